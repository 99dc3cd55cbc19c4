// The addresses of an accepted, redirected TCP connection, shared by original_dst.cc (the accept path in Node) and
// tcp_forwarder.cc (the native accept): the client's address from a sockaddr, and the original destination that the
// NAT rule replaced (SO_ORIGINAL_DST). Plain functions: -errno or 0, never a string for an error.
#pragma once

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace remora {

using AddressText = char[INET6_ADDRSTRLEN];

// A peer sockaddr as text ("10.0.0.1" for an IPv4-mapped client of a dual-stack socket, not "::ffff:10.0.0.1") and a
// port in host order; *v4 tells which getsockopt level its original destination is read at. 0, or -errno.
inline int PeerText(const sockaddr_storage& peer, AddressText& text, uint16_t* port, bool* v4) {
  if (peer.ss_family == AF_INET) {
    const auto* p4 = reinterpret_cast<const sockaddr_in*>(&peer);
    *v4 = true;
    *port = ntohs(p4->sin_port);
    return inet_ntop(AF_INET, &p4->sin_addr, text, sizeof(AddressText)) == nullptr ? -errno : 0;
  }
  if (peer.ss_family == AF_INET6) {
    const auto* p6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    *port = ntohs(p6->sin6_port);
    *v4 = IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr);
    const void* addr = *v4 ? static_cast<const void*>(&p6->sin6_addr.s6_addr[12]) : static_cast<const void*>(&p6->sin6_addr);
    return inet_ntop(*v4 ? AF_INET : AF_INET6, addr, text, sizeof(AddressText)) == nullptr ? -errno : 0;
  }
  return -EAFNOSUPPORT;
}

// SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) as text and a port in host order: 0, or -errno (-ENOENT: no
// NAT entry, the connection was not redirected).
inline int ReadOriginalDst(int fd, bool v4, AddressText& text, uint16_t* port) {
  sockaddr_storage dst{};
  socklen_t len = v4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int rc;
  do {
    rc = v4 ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return -errno;
  const void* addr;
  if (v4) {
    const auto* d4 = reinterpret_cast<const sockaddr_in*>(&dst);
    addr = &d4->sin_addr;
    *port = ntohs(d4->sin_port);
  } else {
    const auto* d6 = reinterpret_cast<const sockaddr_in6*>(&dst);
    addr = &d6->sin6_addr;
    *port = ntohs(d6->sin6_port);
  }
  return inet_ntop(v4 ? AF_INET : AF_INET6, addr, text, sizeof(AddressText)) == nullptr ? -errno : 0;
}

}  // namespace remora
