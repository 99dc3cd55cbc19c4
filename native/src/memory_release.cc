// Gives an idle process's memory back to the system (with original_dst.cc and tcp_forwarder.cc).
//
// releaseMemory(heap = true) -> 0 or 1
//                             With heap true (or no argument), V8's low-memory notification (full collections until
//                             nothing more is freed, the young generation shrunk to its minimum, pooled pages,
//                             compilation caches and the compiled code of functions not running dropped); then, always,
//                             glibc's malloc_trim(0) (free pages inside every malloc arena returned with MADV_DONTNEED:
//                             Buffers and OpenSSL's and libuv's allocations live there, and V8's gc() does not touch
//                             them). 1 when malloc_trim returned memory, 0 when it had none to return or the C library
//                             is not glibc. heap false is the idle trim's release after a short pause: the request
//                             path's optimized code survives it (docs/performance-notes.md, "Issue 15, eighth part").
//
// It also fixes glibc's mmap and trim thresholds at their documented defaults (128 KiB each). Left dynamic, glibc
// raises both after the first large block is freed (up to 32 MiB), and from then on keeps that much free space at
// the top of every thread's arena: malloc_trim returns free pages inside an arena's bins but never the top of a
// thread's arena, so after a load each of V8's worker threads kept ~1.8 MB resident (about 6 MB in all). With fixed
// thresholds a thread's arena gives its top back when it frees. Measured with quick-l7 (ka, close, h2c, then 45 s
// quiet): RSS after 66.1-66.6 MB -> 60.0-60.1 MB, CPU per request within the A/A spread
// (docs/performance-notes.md, "Issue 15, fourth part").
//
// Only src/core/idle-heap-trim.ts calls it, on the main thread: once 200 ms after the proxy is ready, then only after
// a busy period once the process is quiet (heap false after 10 s of quiet, true after a minute). The notification is
// 17-26 ms of full collections on an idle proxy's heap (longer with a larger heap), which is why it is never made
// while requests are being served.
//
// The call reaches V8 through v8.h (N-API has no such call). Isolate::GetCurrent and LowMemoryNotification are plain
// exported symbols that have not changed in many V8 versions; the addon is built against the running Node's headers
// (npm ci), like the rest of it.
#include <node_api.h>
#include <v8.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

napi_value ReleaseMemory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool heap = true;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok && argc >= 1) {
    napi_valuetype type;
    if (napi_typeof(env, argv[0], &type) == napi_ok && type == napi_boolean) napi_get_value_bool(env, argv[0], &heap);
  }
#if defined(__GLIBC__)
  // First, so that the frees of the collections below already follow them.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
  v8::Isolate* isolate = heap ? v8::Isolate::GetCurrent() : nullptr;
  if (isolate != nullptr) isolate->LowMemoryNotification();
  int trimmed = 0;
#if defined(__GLIBC__)
  trimmed = malloc_trim(0);
#endif
  napi_value out;
  napi_create_int32(env, trimmed == 0 ? 0 : 1, &out);
  return out;
}

}  // namespace

// Called from original_dst.cc's module init.
void RegisterMemoryRelease(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "releaseMemory", NAPI_AUTO_LENGTH, ReleaseMemory, nullptr, &fn);
  napi_set_named_property(env, exports, "releaseMemory", fn);
}
