// remora's native code (with tcp_forwarder.cc and memory_release.cc): recover the original destination of a
// redirected TCP connection.
//
// originalDst(fd) -> { family: 4 | 6, address: string, port: number } on success, or a negative errno;
// acceptedAddresses(fd) (below) returns the client's address with it, for the accept path.
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

// acceptedAddresses(fd) -> [family, address, port, peerAddress, peerPort] on success, or a negative errno: the original
// destination and the client of an accepted socket in one call. The peer (getpeername) also tells the getsockopt
// level: an IPv4-mapped peer on a dual-stack socket is an IPv4 connection, as its local address is. So an accept costs
// two system calls here instead of three (getsockname, getsockopt, and node:net's getpeername for remoteAddress),
// and the result is an array: no property names to look up per call.
Napi::Value AcceptedAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "acceptedAddresses(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) {
    return Napi::Number::New(env, -EBADF);
  }

  sockaddr_storage peer{};
  socklen_t peer_len = sizeof(peer);
  char peer_text[INET6_ADDRSTRLEN] = {0};
  uint16_t peer_port_be = 0;
  bool use_v4 = false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    // A client already gone (ENOTCONN) still has its NAT entry: the family from the local address, no peer ("", 0),
    // as node:net shows such a socket (remoteAddress undefined).
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return Napi::Number::New(env, -errno);
    if (local.ss_family == AF_INET) {
      use_v4 = true;
    } else if (local.ss_family == AF_INET6) {
      use_v4 = IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&local)->sin6_addr);
    } else {
      return Napi::Number::New(env, -EAFNOSUPPORT);
    }
  } else if (peer.ss_family == AF_INET) {
    const auto* p4 = reinterpret_cast<const sockaddr_in*>(&peer);
    use_v4 = true;
    peer_port_be = p4->sin_port;
    if (inet_ntop(AF_INET, &p4->sin_addr, peer_text, sizeof(peer_text)) == nullptr) return Napi::Number::New(env, -errno);
  } else if (peer.ss_family == AF_INET6) {
    const auto* p6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    peer_port_be = p6->sin6_port;
    if (IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr)) {
      // The client as IPv4 text ("10.0.0.1", not "::ffff:10.0.0.1"): the last four bytes of the mapped address.
      use_v4 = true;
      if (inet_ntop(AF_INET, &p6->sin6_addr.s6_addr[12], peer_text, sizeof(peer_text)) == nullptr) return Napi::Number::New(env, -errno);
    } else if (inet_ntop(AF_INET6, &p6->sin6_addr, peer_text, sizeof(peer_text)) == nullptr) {
      return Napi::Number::New(env, -errno);
    }
  } else {
    return Napi::Number::New(env, -EAFNOSUPPORT);
  }

  char dst_text[INET6_ADDRSTRLEN] = {0};
  uint16_t dst_port_be = 0;
  int rc;
  if (use_v4) {
    sockaddr_in dst{};
    socklen_t len = sizeof(dst);
    do {
      rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return Napi::Number::New(env, -errno);
    dst_port_be = dst.sin_port;
    if (inet_ntop(AF_INET, &dst.sin_addr, dst_text, sizeof(dst_text)) == nullptr) return Napi::Number::New(env, -errno);
  } else {
    sockaddr_in6 dst{};
    socklen_t len = sizeof(dst);
    do {
      rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return Napi::Number::New(env, -errno);
    dst_port_be = dst.sin6_port;
    if (inet_ntop(AF_INET6, &dst.sin6_addr, dst_text, sizeof(dst_text)) == nullptr) return Napi::Number::New(env, -errno);
  }

  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(uint32_t{0}, Napi::Number::New(env, use_v4 ? 4 : 6));
  out.Set(uint32_t{1}, Napi::String::New(env, dst_text));
  out.Set(uint32_t{2}, Napi::Number::New(env, ntohs(dst_port_be)));
  out.Set(uint32_t{3}, Napi::String::New(env, peer_text));
  out.Set(uint32_t{4}, Napi::Number::New(env, ntohs(peer_port_be)));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  exports.Set("acceptedAddresses", Napi::Function::New(env, AcceptedAddresses, "acceptedAddresses"));
  RegisterTcpForwarder(env, exports);
  RegisterMemoryRelease(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(remora_native, Init)
