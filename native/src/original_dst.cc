// remora's native code (with tcp_forwarder.cc and memory_release.cc): recover the original destination of a
// redirected TCP connection.
//
// originalDst(fd) -> { family: 4 | 6, address: string, port: number } on success, or a negative errno;
// acceptedAddresses(fd) (below) returns the client's address with it, for the accept path; tcpNoDelay(fd) -> 1 or 0
// (TCP_NODELAY) or a negative errno, for the tests of what an accepted connection inherits from its listener.
// The getsockopt level is chosen from the accepted socket's own family (getsockname): an IPv4 socket, or an IPv6
// socket whose local address is IPv4-mapped (an IPv4 client accepted on a dual-stack "::" listener), uses
// SOL_IP/SO_ORIGINAL_DST; a native IPv6 socket uses SOL_IPV6/IP6T_SO_ORIGINAL_DST. No strings describe errors: the
// TypeScript facade (src/interceptor/original-dst.ts) turns -errno into a Node-style SystemError.
#include <napi.h>

#include <cerrno>
#include <cstring>

#include <netinet/tcp.h>

#include "socket_addresses.h"

// native/src/tcp_forwarder.cc: the native forwarder of opaque TCP.
void RegisterTcpForwarder(napi_env env, napi_value exports);
void RegisterMemoryRelease(napi_env env, napi_value exports);

namespace {

using remora::PeerText;
using remora::ReadOriginalDst;

// The fd argument of both functions: the fd, or -1 after throwing a TypeError (a negative fd is returned as is and
// answered with -EBADF by the caller).
int FdArgument(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return -1;
  }
  return info[0].As<Napi::Number>().Int32Value();
}

// Whether an accepted socket carries IPv4 (AF_INET, or AF_INET6 with an IPv4-mapped local address), from its local
// address: 1 or 0, or -errno.
int LocalIsV4(int fd) {
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return -errno;
  if (local.ss_family == AF_INET) return 1;
  if (local.ss_family == AF_INET6) return IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr) ? 1 : 0;
  return -EAFNOSUPPORT;
}

Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArgument(info, "originalDst(fd): fd must be a number");
  if (env.IsExceptionPending()) return env.Undefined();
  if (fd < 0) return Napi::Number::New(env, -EBADF);
  const int v4 = LocalIsV4(fd);
  if (v4 < 0) return Napi::Number::New(env, v4);
  char text[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  const int rc = ReadOriginalDst(fd, v4 == 1, text, &port);
  if (rc != 0) return Napi::Number::New(env, rc);
  Napi::Object out = Napi::Object::New(env);
  out.Set("family", Napi::Number::New(env, v4 == 1 ? 4 : 6));
  out.Set("address", Napi::String::New(env, text));
  out.Set("port", Napi::Number::New(env, port));
  return out;
}

// acceptedAddresses(fd) -> [family, address, port, peerAddress, peerPort] on success, or a negative errno: the original
// destination and the client of an accepted socket in one call. The peer (getpeername) also tells the getsockopt
// level: an IPv4-mapped peer on a dual-stack socket is an IPv4 connection, as its local address is. So an accept costs
// two system calls here instead of three (getsockname, getsockopt, and node:net's getpeername for remoteAddress),
// and the result is an array: no property names to look up per call.
Napi::Value AcceptedAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArgument(info, "acceptedAddresses(fd): fd must be a number");
  if (env.IsExceptionPending()) return env.Undefined();
  if (fd < 0) return Napi::Number::New(env, -EBADF);

  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  char peer_text[INET6_ADDRSTRLEN] = {0};
  uint16_t peer_port = 0;
  int v4;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    // A client already gone (ENOTCONN) still has its NAT entry: the family from the local address, no peer ("", 0),
    // as node:net shows such a socket (remoteAddress undefined).
    v4 = LocalIsV4(fd);
    if (v4 < 0) return Napi::Number::New(env, v4);
  } else {
    bool is_v4 = false;
    const int prc = PeerText(peer, peer_text, &peer_port, &is_v4);
    if (prc != 0) return Napi::Number::New(env, prc);
    v4 = is_v4 ? 1 : 0;
  }

  char dst_text[INET6_ADDRSTRLEN] = {0};
  uint16_t dst_port = 0;
  const int rc = ReadOriginalDst(fd, v4 == 1, dst_text, &dst_port);
  if (rc != 0) return Napi::Number::New(env, rc);

  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(uint32_t{0}, Napi::Number::New(env, v4 == 1 ? 4 : 6));
  out.Set(uint32_t{1}, Napi::String::New(env, dst_text));
  out.Set(uint32_t{2}, Napi::Number::New(env, dst_port));
  out.Set(uint32_t{3}, Napi::String::New(env, peer_text));
  out.Set(uint32_t{4}, Napi::Number::New(env, peer_port));
  return out;
}

Napi::Value TcpNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = FdArgument(info, "tcpNoDelay(fd): fd must be a number");
  if (env.IsExceptionPending()) return env.Undefined();
  if (fd < 0) return Napi::Number::New(env, -EBADF);
  int on = 0;
  socklen_t len = sizeof(on);
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, on != 0 ? 1 : 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  exports.Set("acceptedAddresses", Napi::Function::New(env, AcceptedAddresses, "acceptedAddresses"));
  exports.Set("tcpNoDelay", Napi::Function::New(env, TcpNoDelay, "tcpNoDelay"));
  RegisterTcpForwarder(env, exports);
  RegisterMemoryRelease(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(remora_native, Init)
