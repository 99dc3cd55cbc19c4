// remora's native code (with tcp_forwarder.cc and memory_release.cc): recover the original destination of a
// redirected TCP connection.
//
// originalDst(fd) -> { family: 4 | 6, address: string, port: number } on success, or a negative errno.
// The getsockopt level is chosen from the accepted socket's own family (getsockname): an IPv4 socket, or an IPv6
// socket whose local address is IPv4-mapped (an IPv4 client accepted on a dual-stack "::" listener), uses
// SOL_IP/SO_ORIGINAL_DST; a native IPv6 socket uses SOL_IPV6/IP6T_SO_ORIGINAL_DST. No strings describe errors: the
// TypeScript facade (src/interceptor/original-dst.ts) turns -errno into a Node-style SystemError.
#include <napi.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

// native/src/tcp_forwarder.cc: the native forwarder of opaque TCP.
void RegisterTcpForwarder(napi_env env, napi_value exports);
void RegisterMemoryRelease(napi_env env, napi_value exports);

namespace {

Napi::Value Result(Napi::Env env, int family, const void* addr, uint16_t port_be) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, text, sizeof(text)) == nullptr) {
    return Napi::Number::New(env, -errno);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("family", Napi::Number::New(env, family));
  out.Set("address", Napi::String::New(env, text));
  out.Set("port", Napi::Number::New(env, ntohs(port_be)));
  return out;
}

Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "originalDst(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) {
    return Napi::Number::New(env, -EBADF);
  }

  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    return Napi::Number::New(env, -errno);
  }

  bool use_v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    const auto* l6 = reinterpret_cast<const sockaddr_in6*>(&local);
    use_v4 = IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr);
  } else if (local.ss_family != AF_INET) {
    return Napi::Number::New(env, -EAFNOSUPPORT);
  }

  if (use_v4) {
    sockaddr_in dst{};
    socklen_t len = sizeof(dst);
    int rc;
    do {
      rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return Napi::Number::New(env, -errno);
    return Result(env, 4, &dst.sin_addr, dst.sin_port);
  }

  sockaddr_in6 dst{};
  socklen_t len = sizeof(dst);
  int rc;
  do {
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Napi::Number::New(env, -errno);
  return Result(env, 6, &dst.sin6_addr, dst.sin6_port);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  RegisterTcpForwarder(env, exports);
  RegisterMemoryRelease(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(remora_native, Init)
