// The native forwarder of opaque TCP: one thread per Node environment, with its own epoll, moves bytes between the
// two sockets of each connection handed to it (recv into one thread-local 64 KiB buffer, send to the other side; what
// the other side cannot take now waits in that side's pending buffer, and the reading side is not read until it is
// written). No JavaScript runs per chunk; JavaScript holds one small object per connection.
//
// It also accepts (the native accept: src/l4/native-accepted.ts, src/l4/native-connection.ts): a capture listener's socket is polled here, and each
// connection is accepted, its original destination read, and reported to JavaScript, which routes it and answers with
// forwarderConnect (the thread connects, then forwards as above; while detection watches, the first bytes each way are
// reported too) or forwarderRelease (the fd goes to a Node socket: every connection that needs more than bytes).
//
// JS surface (src/core/native-addon.ts types it; src/l4/native-forwarder.ts is its only user):
//   forwarderInit(onReport)         once per environment: onReport(ended, events, extras) hears, in batches, ended
//                                   connections (Float64Array, ENDED_FIELDS numbers each: id, bytes down->up, bytes
//                                   up->down, end kind, errno) and events (Float64Array, EVENT_FIELDS numbers each:
//                                   kind, id, a, b, c, d; `extras` holds their strings and bytes in order): see Event.
//   forwarderListen(fd) -> handle   dup()s a listening socket and accepts on it from now on (-errno on failure); sets
//                                   TCP_NODELAY on it once, which every accepted connection inherits.
//   forwarderUnlisten(handle) -> 0 or -ENOENT      stops accepting (the dup is closed).
//   forwarderConnect(id, address, port, bindAddress, connectTimeoutMs, idleTimeoutMs, detectTimeoutMs, notify)
//                                   -> 0 or -errno   connects an accepted connection (again, after CONNECT_FAILED) and
//                                   forwards once connected; detectTimeoutMs > 0 watches its first bytes.
//   forwarderRelease(id) -> fd or -errno           an accepted connection not yet connected leaves the thread; the
//                                   caller owns the fd.
//   forwarderWatchDone(id) -> 0 or -ENOENT         detection decided: no more first bytes are reported.
//   forwarderAdd(fdDown, fdUp, idleTimeoutMs, pendingToUp, pendingToDown) -> id (> 0) or -errno
//                                   dup()s both fds (the caller then closes its own through libuv: uv_close does
//                                   EPOLL_CTL_DEL before close(), so the shared file description never fires there);
//                                   the pending buffers (or undefined) are written to that side before anything else:
//                                   as far as the socket takes them at once, on the calling thread; the rest by the thread.
//   forwarderAbort(id) -> 0 or -ENOENT     resets both sides (SO_LINGER {1, 0}); the end is reported as ABORTED.
//   forwarderBytes(id, out Float64Array(2, 4 or 5)) -> 0 or -ENOENT   the live byte counters (exact, read now),
//                                   each side's half-close flags (1: its FIN read, 2: our FIN sent to it), and the
//                                   connection's state (0 forwarding, 1 accepted, 2 connecting).
//   forwarderDeltas() -> Float64Array      id, +down->up, +up->down for every live connection that moved bytes since
//                                   the last call (the sweep that keeps listener counters and TCP metrics moving).
//   forwarderLive() -> number        connections handed over and not yet reported ended.
// Semantics are TcpForward's (src/l4/tcp-forward.ts): backpressure, half-close both ways (EOF on one side ->
// shutdown(SHUT_WR) on the other once its pending bytes are written; closed when both directions are done), an error
// or RST on one side resets the other, the idle timeout (no byte either way) closes both, abort resets both.
// Nothing here returns a string for an error: -errno or a value. The thread never touches the JS heap: it reports
// through a napi_threadsafe_function (unref'd: it does not keep the process alive). At environment teardown the
// thread stops and every connection still open is reset.
#include <node_api.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "socket_addresses.h"

namespace {

constexpr int kEndedFields = 5;
constexpr int kEventFields = 6;
// Accepts per readiness event of a listener before the thread looks at the connections.
constexpr int kAcceptsPerEvent = 64;
// How many of the client's first bytes detection is shown at most (the sniffer's largest need, a TLS ClientHello).
constexpr size_t kWatchLimit = 64 * 1024;
// After accept() fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), the listener rests this long.
constexpr int64_t kListenerRestMs = 100;
constexpr size_t kBufSize = 64 * 1024;
// How many reads one readiness event may do before the thread looks at the other connections.
constexpr int kReadsPerEvent = 4;

enum EndKind : int { END_CLEAN = 0, END_DOWN_ERROR = 1, END_UP_ERROR = 2, END_IDLE = 3, END_ABORTED = 4 };

// What the thread reports besides ends (src/l4/native-forwarder.ts reads them): [kind, id, a, b, c, d].
enum EventKind : int {
  EV_ACCEPTED = 1,        // a = listener handle, b = 0 or -errno of the original destination, c = its port, d = the
                          // client's port; extras: the original destination's address, the client's address
  EV_CONNECTED = 2,       // (only when forwarderConnect asked to be told)
  EV_CONNECT_FAILED = 3,  // a = errno (ETIMEDOUT: the connect timeout); the connection waits for JS again
  EV_CLIENT_DATA = 4,     // extras: the bytes (detection)
  EV_CLIENT_FIN = 5,
  EV_SERVER_DATA = 6,     // extras: the upstream's first bytes (detection)
  EV_SERVER_FIN = 7,
  EV_DETECT_TIMEOUT = 8,
  EV_LISTEN_ERROR = 9,    // a = listener handle, b = errno of accept()
};

// A connection accepted here goes ACCEPTED -> CONNECTING -> FORWARDING (back to ACCEPTED after a failed connect);
// one handed over by forwarderAdd starts FORWARDING.
enum ConnState : int { FORWARDING = 0, ACCEPTED = 1, CONNECTING = 2 };

// What an epoll registration points at.
struct Polled {
  int what;  // 0: a side of a connection, 1: a listener
};

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Conn;

struct Side : Polled {
  Side() : Polled{0} {}
  Conn* conn = nullptr;
  int index = 0;  // 0 = downstream, 1 = upstream
  int fd = -1;
  bool registered = false;
  uint32_t events = 0;
  bool readEof = false;      // EOF read from this side (it sends no more)
  bool shutWr = false;       // shutdown(SHUT_WR) done on this side
  bool wantShut = false;     // shut down once `pending` is written
  bool readPaused = false;   // not read while the other side's pending bytes wait
  std::vector<char> pending;  // bytes to write to this side
  size_t pendingOff = 0;
};

struct Conn {
  uint32_t id = 0;
  Side side[2];
  // [0]: downstream -> upstream, [1]: upstream -> downstream. Written by the thread, read by JS.
  std::atomic<double> bytes[2];
  // Per side (0 downstream, 1 upstream), for /debug/connections: 1 = its FIN was read, 2 = our FIN was sent to it.
  std::atomic<int> flags[2];
  // JS thread only: what forwarderDeltas() last reported.
  double reported[2] = {0, 0};
  uint32_t idleMs = 0;
  int64_t activeAt = 0;
  bool done = false;
  int endKind = END_CLEAN;
  int endErrno = 0;
  // Native accept (thread only, but `released` and `watchDone`, which JS sets).
  std::atomic<int> state{FORWARDING};  // written by the thread, read by forwarderBytes
  int64_t acceptedAt = 0;
  int64_t connectDeadline = 0;  // CONNECTING: when the connect times out (0: never)
  int64_t detectDeadline = 0;   // watching: when detection times out (0: never)
  bool notifyConnect = false;
  bool watching = false;        // report the first bytes each way (detection)
  bool upReported = false;      // the upstream's first bytes (or FIN) were reported
  size_t watched = 0;           // client bytes reported so far
  std::atomic<bool> released{false};
  std::atomic<bool> watchDone{false};
  // Its fds are its own (accepted or connected here, not dup()s of Node's): close() alone takes them out of the epoll.
  bool ownFds = false;
  bool connectAsked = false;  // JS thread only: forwarderConnect was called (it can no longer be released)
  Conn() {
    bytes[0] = 0;
    bytes[1] = 0;
    flags[0] = 0;
    flags[1] = 0;
  }
};

struct Listener : Polled {
  Listener() : Polled{1} {}
  uint32_t handle = 0;
  int fd = -1;
  bool registered = false;
  int64_t restUntil = 0;  // resting after accept() ran out of resources
  // TCP_NODELAY is set on the listening socket: Linux copies it into every connection accept() returns, so the
  // accepted ones need no setsockopt of their own.
  bool inheritsNoDelay = false;
};

struct ConnectParams {
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  sockaddr_storage bind{};
  socklen_t bindLen = 0;
  uint32_t connectMs = 0;
  uint32_t idleMs = 0;
  uint32_t detectMs = 0;
  bool notify = false;
};

struct Command {
  enum Kind { ADD, ABORT, LISTEN, UNLISTEN, CONNECT, RELEASE } kind;
  std::shared_ptr<Conn> conn;
  uint32_t id;
  std::shared_ptr<Listener> listener;
  std::shared_ptr<ConnectParams> params;
};

struct Event {
  int kind;
  uint32_t id;
  double a, b, c, d;
  std::string text1, text2;  // EV_ACCEPTED
  std::vector<char> bytes;   // EV_CLIENT_DATA, EV_SERVER_DATA
  std::shared_ptr<Conn> conn;  // EV_ACCEPTED: the JS side keeps it from now on
};

struct Ended {
  uint32_t id;
  double in;
  double out;
  int kind;
  int err;
};

class Forwarder {
 public:
  explicit Forwarder(napi_env env) : env_(env) {}

  ~Forwarder() { Stop(); }

  int Init(napi_value onEnded) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return -errno;
    evfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (evfd_ < 0) return -errno;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev) != 0) return -errno;
    napi_value name;
    napi_create_string_utf8(env_, "remora-tcp-forwarder", NAPI_AUTO_LENGTH, &name);
    if (napi_create_threadsafe_function(env_, onEnded, nullptr, name, 0, 1, nullptr, nullptr, this, CallJs, &tsfn_) != napi_ok) {
      return -EINVAL;
    }
    napi_unref_threadsafe_function(env_, tsfn_);
    // Registered after the tsfn: cleanup hooks run in reverse order, so this one stops the thread before Node closes
    // the tsfn.
    napi_add_env_cleanup_hook(env_, Cleanup, this);
    thread_ = std::thread([this] { Run(); });
    return 0;
  }

  int Add(int fdDown, int fdUp, uint32_t idleMs, const char* toUp, size_t toUpLen, const char* toDown, size_t toDownLen) {
    if (fdDown < 0 || fdUp < 0 || fdDown == fdUp) return -EBADF;
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fdDown, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    if (type != SOCK_STREAM) return -ENOTSOCK;
    len = sizeof(type);
    if (getsockopt(fdUp, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    if (type != SOCK_STREAM) return -ENOTSOCK;
    int d = fcntl(fdDown, F_DUPFD_CLOEXEC, 0);
    if (d < 0) return -errno;
    int u = fcntl(fdUp, F_DUPFD_CLOEXEC, 0);
    if (u < 0) {
      int e = errno;
      close(d);
      return -e;
    }
    SetNonBlocking(d);
    SetNonBlocking(u);
    auto c = NewConn(d, u);
    c->idleMs = idleMs;
    if (toUpLen > 0) c->side[1].pending.assign(toUp, toUp + toUpLen);
    if (toDownLen > 0) c->side[0].pending.assign(toDown, toDown + toDownLen);
    // Pending bytes count as forwarded, as TcpForward counts the detection head.
    c->bytes[0] = static_cast<double>(toUpLen);
    c->bytes[1] = static_cast<double>(toDownLen);
    if (toUpLen + toDownLen > 0) moved_.store(true, std::memory_order_release);
    // The bytes already read go out now, on the caller's thread: the thread's wake-up is then not on the path of the
    // first exchange (a server-first greeting, a detected request head). What a full socket does not take stays
    // pending for the thread; an error is left for the thread to meet at its own next send.
    for (int i = 0; i < 2; i++) SendNow(&c->side[i]);
    live_.emplace(c->id, c);
    Push(Command{Command::ADD, c, c->id, nullptr, nullptr});
    return static_cast<int>(c->id);
  }

  int Abort(uint32_t id) {
    if (live_.find(id) == live_.end()) return -ENOENT;
    Push(Command{Command::ABORT, nullptr, id, nullptr, nullptr});
    return 0;
  }

  int Bytes(uint32_t id, double* out, size_t n) {
    auto it = live_.find(id);
    if (it == live_.end()) return -ENOENT;
    out[0] = it->second->bytes[0].load(std::memory_order_relaxed);
    out[1] = it->second->bytes[1].load(std::memory_order_relaxed);
    if (n >= 4) {
      out[2] = it->second->flags[0].load(std::memory_order_relaxed);
      out[3] = it->second->flags[1].load(std::memory_order_relaxed);
    }
    if (n >= 5) out[4] = it->second->state.load(std::memory_order_relaxed);
    return 0;
  }

  std::vector<double> Deltas() {
    std::vector<double> out;
    // Nothing moved since the last call (idle connections): no walk over them.
    if (!moved_.exchange(false, std::memory_order_acq_rel)) return out;
    for (auto& kv : live_) {
      Conn* c = kv.second.get();
      double a = c->bytes[0].load(std::memory_order_relaxed);
      double b = c->bytes[1].load(std::memory_order_relaxed);
      if (a == c->reported[0] && b == c->reported[1]) continue;
      out.push_back(c->id);
      out.push_back(a - c->reported[0]);
      out.push_back(b - c->reported[1]);
      c->reported[0] = a;
      c->reported[1] = b;
    }
    return out;
  }

  size_t Live() const { return live_.size(); }

  // Accept on a dup of the listening socket `fd` from now on: the listener's handle, or -errno.
  int Listen(int fd) {
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    if (type != SOCK_STREAM) return -ENOTSOCK;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) return -errno;
    SetNonBlocking(d);
    auto l = std::make_shared<Listener>();
    l->fd = d;
    int one = 1;
    l->inheritsNoDelay = setsockopt(d, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
    l->handle = nextListener_.fetch_add(1);
    Command cmd{Command::LISTEN, nullptr, l->handle, l, nullptr};
    Push(std::move(cmd));
    return static_cast<int>(l->handle);
  }

  int Unlisten(uint32_t handle) {
    Push(Command{Command::UNLISTEN, nullptr, handle, nullptr, nullptr});
    return 0;
  }

  // Connect an accepted connection (not connected yet, or after EV_CONNECT_FAILED).
  int Connect(uint32_t id, std::shared_ptr<ConnectParams> p) {
    auto it = live_.find(id);
    if (it == live_.end()) return -ENOENT;
    if (it->second->released.load()) return -ENOENT;
    it->second->connectAsked = true;
    Push(Command{Command::CONNECT, nullptr, id, nullptr, std::move(p)});
    return 0;
  }

  // Give an accepted connection that was never asked to connect to the caller: its fd, or -errno.
  int Release(uint32_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return -ENOENT;
    Conn* c = it->second.get();
    if (c->released.load()) return -ENOENT;
    if (c->connectAsked) return -EBUSY;
    int fd = c->side[0].fd;
    if (fd < 0) return -EBADF;
    c->released.store(true);
    live_.erase(it);
    Push(Command{Command::RELEASE, nullptr, id, nullptr, nullptr});
    return fd;
  }

  int WatchDone(uint32_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return -ENOENT;
    it->second->watchDone.store(true, std::memory_order_relaxed);
    return 0;
  }

 private:
  // Before the thread knows the connection: write what `s->pending` holds without blocking, as far as it goes.
  static void SendNow(Side* s) {
    while (s->pending.size() > s->pendingOff) {
      ssize_t w = send(s->fd, s->pending.data() + s->pendingOff, s->pending.size() - s->pendingOff, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        s->pendingOff += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    std::vector<char>().swap(s->pending);
    s->pendingOff = 0;
  }

  static void SetNonBlocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }

  // Queue a command for the thread and wake it, unless a wake-up is already on its way (the thread clears the flag
  // before it takes the commands, so a command queued after that wakes it again): one write for a batch of commands.
  void Push(Command cmd) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      commands_.push_back(std::move(cmd));
    }
    if (wakePending_.exchange(true, std::memory_order_acq_rel)) return;
    uint64_t one = 1;
    ssize_t r = write(evfd_, &one, sizeof(one));
    (void)r;
  }

  // === the thread ===
  void Run() {
    std::vector<epoll_event> events(256);
    std::vector<Command> cmds;
    int64_t nextSweep = 0;
    while (!stop_.load()) {
      int timeout = -1;
      if (!conns_.empty() || resting_ > 0) {
        int64_t now = NowMs();
        if (nextSweep == 0) nextSweep = now + SweepPeriod();
        timeout = static_cast<int>(nextSweep > now ? nextSweep - now : 0);
      }
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; i++) {
        Polled* p = static_cast<Polled*>(events[i].data.ptr);
        if (p == nullptr) {
          uint64_t v;
          ssize_t r = read(evfd_, &v, sizeof(v));
          (void)r;
          continue;
        }
        if (p->what == 1) {
          OnListener(static_cast<Listener*>(p));
          continue;
        }
        Side* s = static_cast<Side*>(p);
        if (s->conn->done) continue;
        if (s->conn->state == CONNECTING) {
          if (s->index == 1) OnConnecting(s->conn, events[i].events);
          continue;
        }
        OnEvent(s, events[i].events);
      }
      wakePending_.store(false, std::memory_order_release);
      {
        std::lock_guard<std::mutex> lock(mu_);
        cmds.swap(commands_);
      }
      for (auto& cmd : cmds) Apply(cmd);
      cmds.clear();
      if (!conns_.empty() || resting_ > 0) {
        int64_t now = NowMs();
        if (nextSweep == 0) nextSweep = now + SweepPeriod();
        if (now >= nextSweep) {
          SweepTimers(now);
          nextSweep = now + SweepPeriod();
        }
      } else {
        nextSweep = 0;
      }
      Reap();
    }
  }

  // The timer scan (idle, connect and detection timeouts, resting listeners) runs every quarter of the shortest timeout,
  // between 10 ms and 1 s (a timeout fires up to 25 %, at most 1 s, late: as the JS forwards' sweep).
  int64_t SweepPeriod() const {
    uint32_t min = minTimeout_;
    if (resting_ > 0 && (min == 0 || min > 4 * kListenerRestMs)) min = 4 * kListenerRestMs;
    if (min == 0) return 1000;
    int64_t p = min / 4;
    if (p < 10) p = 10;
    if (p > 1000) p = 1000;
    return p;
  }

  void NoteTimeout(uint32_t ms) {
    if (ms > 0 && (minTimeout_ == 0 || ms < minTimeout_)) minTimeout_ = ms;
  }

  void SweepTimers(int64_t now) {
    for (auto& kv : conns_) {
      Conn* c = kv.second.get();
      if (c->done) continue;
      if (c->state == CONNECTING) {
        if (c->connectDeadline != 0 && now >= c->connectDeadline) ConnectFailed(c, ETIMEDOUT);
        continue;
      }
      if (c->state != FORWARDING) continue;
      if (c->watching && c->detectDeadline != 0 && now >= c->detectDeadline) {
        c->watching = false;
        if (!c->watchDone.load(std::memory_order_relaxed)) Report(EV_DETECT_TIMEOUT, c->id);
      }
      if (c->idleMs != 0 && now - c->activeAt >= c->idleMs) Finish(c, END_IDLE, 0, false, false);
    }
    if (resting_ > 0) {
      for (auto& kv : listeners_) {
        Listener* l = kv.second.get();
        if (l->restUntil != 0 && now >= l->restUntil) {
          l->restUntil = 0;
          resting_--;
          Watch(l);
        }
      }
    }
  }

  void Apply(Command& cmd) {
    switch (cmd.kind) {
      case Command::ADD:
        Start(std::move(cmd.conn));
        return;
      case Command::ABORT: {
        auto it = conns_.find(cmd.id);
        if (it != conns_.end() && !it->second->done) Finish(it->second.get(), END_ABORTED, 0, true, true);
        return;
      }
      case Command::LISTEN:
        listeners_.emplace(cmd.listener->handle, cmd.listener);
        Watch(cmd.listener.get());
        return;
      case Command::UNLISTEN: {
        auto it = listeners_.find(cmd.id);
        if (it == listeners_.end()) return;
        Listener* l = it->second.get();
        if (l->registered) {
          epoll_event dummy{};
          epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, &dummy);
        }
        if (l->restUntil != 0) resting_--;
        close(l->fd);
        listeners_.erase(it);
        return;
      }
      case Command::CONNECT: {
        auto it = conns_.find(cmd.id);
        if (it != conns_.end() && !it->second->done) ConnectNow(it->second.get(), *cmd.params);
        return;
      }
      case Command::RELEASE: {
        // The fd is the JS side's now: forget the connection without touching it.
        auto it = conns_.find(cmd.id);
        if (it == conns_.end()) return;
        it->second->side[0].fd = -1;
        it->second->done = true;
        conns_.erase(it);
        return;
      }
    }
  }

  // Poll a listener (again); a failure is reported as a listener error.
  void Watch(Listener* l) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    e.data.ptr = static_cast<Polled*>(l);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, l->fd, &e) != 0) {
      Report(EV_LISTEN_ERROR, 0, l->handle, errno);
      return;
    }
    l->registered = true;
  }

  void Rest(Listener* l, int err) {
    if (l->registered) {
      epoll_event dummy{};
      epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, &dummy);
      l->registered = false;
    }
    l->restUntil = NowMs() + kListenerRestMs;
    resting_++;
    Report(EV_LISTEN_ERROR, 0, l->handle, err);
  }

  void OnListener(Listener* l) {
    for (int i = 0; i < kAcceptsPerEvent; i++) {
      sockaddr_storage peer{};
      socklen_t peerLen = sizeof(peer);
      int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &peerLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int e = errno;
        if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;  // that connection only
        if (e == EAGAIN || e == EWOULDBLOCK) return;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM (or an error of the listener itself): rest instead of spinning on it.
        Rest(l, e);
        return;
      }
      Accepted(l, fd, peer);
    }
  }

  // A new connection: its addresses are read now and the connection waits for JavaScript's answer.
  void Accepted(Listener* l, int fd, const sockaddr_storage& peer) {
    if (!l->inheritsNoDelay) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    remora::AddressText peerText = {0};
    remora::AddressText dstText = {0};
    uint16_t peerPort = 0;
    uint16_t dstPort = 0;
    bool v4 = false;
    int status = remora::PeerText(peer, peerText, &peerPort, &v4);
    if (status == 0) status = remora::ReadOriginalDst(fd, v4, dstText, &dstPort);
    auto c = NewConn(fd, -1);
    c->ownFds = true;
    c->state = ACCEPTED;
    c->acceptedAt = NowMs();
    conns_.emplace(c->id, c);
    Event ev{EV_ACCEPTED, c->id, static_cast<double>(l->handle), static_cast<double>(status), static_cast<double>(dstPort),
             static_cast<double>(peerPort), std::string(dstText), std::string(peerText), {}, c};
    Queue(std::move(ev));
  }

  void ConnectNow(Conn* c, const ConnectParams& p) {
    if (c->state != ACCEPTED) return;
    c->idleMs = p.idleMs;
    c->notifyConnect = p.notify;
    if (p.detectMs > 0 && c->detectDeadline == 0) c->detectDeadline = c->acceptedAt + p.detectMs;
    c->watching = p.detectMs > 0 && !c->watchDone.load(std::memory_order_relaxed);
    int fd = socket(p.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Report(EV_CONNECT_FAILED, c->id, errno);
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (p.bindLen > 0 && bind(fd, reinterpret_cast<const sockaddr*>(&p.bind), p.bindLen) != 0) {
      int e = errno;
      close(fd);
      Report(EV_CONNECT_FAILED, c->id, e);
      return;
    }
    int rc;
    do {
      rc = connect(fd, reinterpret_cast<const sockaddr*>(&p.addr), p.addrLen);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
      int e = errno;
      close(fd);
      Report(EV_CONNECT_FAILED, c->id, e);
      return;
    }
    Side* up = &c->side[1];
    up->fd = fd;
    c->state = CONNECTING;
    NoteTimeout(p.connectMs);
    NoteTimeout(p.detectMs);
    NoteTimeout(p.idleMs);
    c->connectDeadline = p.connectMs > 0 ? NowMs() + p.connectMs : 0;
    if (rc == 0) {
      Connected(c);
      return;
    }
    epoll_event e{};
    e.events = EPOLLOUT;
    e.data.ptr = static_cast<Polled*>(up);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &e) != 0) {
      ConnectFailed(c, errno);
      return;
    }
    up->registered = true;
    up->events = EPOLLOUT;
  }

  void OnConnecting(Conn* c, uint32_t /*ev*/) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->side[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      Connected(c);
    } else if (err != EINPROGRESS && err != EALREADY) {
      ConnectFailed(c, err);
    }
  }

  void Connected(Conn* c) {
    c->state = FORWARDING;
    c->activeAt = NowMs();
    if (c->notifyConnect) Report(EV_CONNECTED, c->id);
    for (int i = 0; i < 2 && !c->done; i++) Update(&c->side[i]);
  }

  // The connect failed (or timed out): the upstream socket goes, the client stays, JavaScript decides what next.
  void ConnectFailed(Conn* c, int err) {
    Side* up = &c->side[1];
    if (up->fd >= 0) {
      if (up->registered) {
        epoll_event dummy{};
        epoll_ctl(epfd_, EPOLL_CTL_DEL, up->fd, &dummy);
      }
      close(up->fd);
    }
    up->fd = -1;
    up->registered = false;
    up->events = 0;
    c->state = ACCEPTED;
    c->connectDeadline = 0;
    Report(EV_CONNECT_FAILED, c->id, err);
  }

  // Detection: what a side just read (n > 0), or its EOF (n == 0), while the connection is watched.
  void Watched(Conn* c, int index, const char* data, size_t n) {
    if (c->watchDone.load(std::memory_order_relaxed)) {
      c->watching = false;
      return;
    }
    if (index == 0) {
      if (n == 0) {
        c->watching = false;
        Report(EV_CLIENT_FIN, c->id);
        return;
      }
      size_t take = n;
      if (c->watched + take > kWatchLimit) take = kWatchLimit - c->watched;
      if (take == 0) return;
      c->watched += take;
      Event ev{EV_CLIENT_DATA, c->id, 0, 0, 0, 0, {}, {}, std::vector<char>(data, data + take), nullptr};
      Queue(std::move(ev));
      return;
    }
    if (c->upReported) return;
    c->upReported = true;
    if (n == 0) {
      Report(EV_SERVER_FIN, c->id);
      return;
    }
    Event ev{EV_SERVER_DATA, c->id, 0, 0, 0, 0, {}, {}, std::vector<char>(data, data + (n < 64 ? n : 64)), nullptr};
    Queue(std::move(ev));
  }

  void Report(int kind, uint32_t id, double a = 0, double b = 0) {
    Queue(Event{kind, id, a, b, 0, 0, {}, {}, {}, nullptr});
  }

  void Queue(Event ev) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(ev));
  }

  // A connection with a new id and its two sides (-1: not open yet).
  std::shared_ptr<Conn> NewConn(int fdDown, int fdUp) {
    auto c = std::make_shared<Conn>();
    c->id = NextId();
    for (int i = 0; i < 2; i++) {
      c->side[i].conn = c.get();
      c->side[i].index = i;
    }
    c->side[0].fd = fdDown;
    c->side[1].fd = fdUp;
    return c;
  }

  uint32_t NextId() {
    uint32_t id = nextId_.fetch_add(1);
    while (id == 0) id = nextId_.fetch_add(1);
    return id;
  }

  void Start(std::shared_ptr<Conn> cp) {
    Conn* c = cp.get();
    // The shortest idle timeout handed over so far sets the scan period (never raised again: a shorter scan than
    // needed costs a little CPU, a longer one would fire late).
    NoteTimeout(c->idleMs);
    conns_.emplace(c->id, std::move(cp));
    c->activeAt = NowMs();
    for (int i = 0; i < 2; i++) {
      Side* s = &c->side[i];
      // Reading a side waits until the bytes already pending for the other side are written.
      s->readPaused = !c->side[1 - i].pending.empty();
    }
    for (int i = 0; i < 2 && !c->done; i++) Update(&c->side[i]);
  }

  // The epoll interest of a side from its state (level-triggered). A side with nothing to wait for (EOF read, or
  // not read while the other side is full, and nothing to write) leaves the epoll: its HUP would fire forever. An RST
  // on it is then seen at the next recv/send, as libuv does for a socket that stopped reading.
  void Update(Side* s) {
    uint32_t ev = 0;
    if (!s->readEof && !s->readPaused) ev |= EPOLLIN;
    if (s->pending.size() > s->pendingOff) ev |= EPOLLOUT;
    if (ev == 0) {
      if (s->registered) {
        epoll_event dummy{};
        epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, &dummy);
        s->registered = false;
      }
      return;
    }
    if (s->registered && s->events == ev) return;
    epoll_event e{};
    e.events = ev;
    e.data.ptr = s;
    int rc = epoll_ctl(epfd_, s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &e);
    if (rc != 0) {
      Fail(s, errno);
      return;
    }
    s->registered = true;
    s->events = ev;
  }

  void OnEvent(Side* s, uint32_t ev) {
    if (ev & EPOLLERR) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      Fail(s, err == 0 ? ECONNRESET : err);
      return;
    }
    if (ev & EPOLLOUT) {
      Flush(s);
      if (s->conn->done) return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP)) && !s->readEof && !s->readPaused) Read(s);
  }

  // Read `s` and send to the other side, until EAGAIN, EOF, backpressure, or kReadsPerEvent reads.
  void Read(Side* s) {
    Conn* c = s->conn;
    Side* o = &c->side[1 - s->index];
    static thread_local char buf[kBufSize];
    for (int i = 0; i < kReadsPerEvent; i++) {
      ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c->activeAt = NowMs();
        c->bytes[s->index].store(c->bytes[s->index].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        moved_.store(true, std::memory_order_release);
        if (c->watching) Watched(c, s->index, buf, static_cast<size_t>(n));
        size_t sent = 0;
        while (sent < static_cast<size_t>(n)) {
          ssize_t w = send(o->fd, buf + sent, n - sent, MSG_NOSIGNAL);
          if (w > 0) {
            sent += w;
            continue;
          }
          if (w < 0 && errno == EINTR) continue;
          if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          Fail(o, w < 0 ? errno : EPIPE);
          return;
        }
        if (sent < static_cast<size_t>(n)) {
          // The other side is full: keep the rest for it, stop reading this side until it is written.
          o->pending.assign(buf + sent, buf + n);
          o->pendingOff = 0;
          s->readPaused = true;
          Update(s);
          if (!c->done) Update(o);
          return;
        }
        if (static_cast<size_t>(n) < sizeof(buf)) return;  // probably drained; level-triggered epoll says if not
        continue;
      }
      if (n == 0) {
        if (c->watching) Watched(c, s->index, nullptr, 0);
        s->readEof = true;
        c->flags[s->index].fetch_or(1, std::memory_order_relaxed);
        o->wantShut = true;
        if (o->pending.size() <= o->pendingOff) {
          // The last FIN of the connection (the other side's came and was passed on): close() below sends it.
          if (o->readEof && s->shutWr && c->ownFds) {
            o->shutWr = true;
            c->flags[o->index].fetch_or(2, std::memory_order_relaxed);
            MaybeClose(c);
            return;
          }
          Shut(o);
        }
        if (c->done) return;
        Update(s);
        if (!c->done) Update(o);
        MaybeClose(c);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Fail(s, errno);
      return;
    }
  }

  void Flush(Side* o) {
    Conn* c = o->conn;
    while (o->pending.size() > o->pendingOff) {
      ssize_t w = send(o->fd, o->pending.data() + o->pendingOff, o->pending.size() - o->pendingOff, MSG_NOSIGNAL);
      if (w > 0) {
        o->pendingOff += w;
        c->activeAt = NowMs();
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        Update(o);
        return;
      }
      Fail(o, w < 0 ? errno : EPIPE);
      return;
    }
    // Written: free the buffer, read the other side again, and pass on its FIN if it came.
    std::vector<char>().swap(o->pending);
    o->pendingOff = 0;
    Side* s = &c->side[1 - o->index];
    s->readPaused = false;
    if (o->wantShut) Shut(o);
    if (c->done) return;
    Update(o);
    if (!c->done) Update(s);
    if (!c->done) MaybeClose(c);
  }

  void Shut(Side* o) {
    if (o->shutWr) return;
    o->shutWr = true;
    o->conn->flags[o->index].fetch_or(2, std::memory_order_relaxed);
    if (shutdown(o->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
      Fail(o, errno);
    }
  }

  // Both directions done (each side's EOF read and passed on): close both, a clean end.
  void MaybeClose(Conn* c) {
    if (c->done) return;
    if (c->side[0].readEof && c->side[1].readEof && c->side[0].shutWr && c->side[1].shutWr) {
      Finish(c, END_CLEAN, 0, false, false);
    }
  }

  // An error on side `s`: it is closed, the other side is reset.
  void Fail(Side* s, int err) {
    Conn* c = s->conn;
    if (c->done) return;
    bool down = s->index == 0;
    Finish(c, down ? END_DOWN_ERROR : END_UP_ERROR, err, !down, down);
  }

  static void Reset(int fd) {
    linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }

  void Finish(Conn* c, int kind, int err, bool resetDown, bool resetUp) {
    if (c->done) return;
    c->done = true;
    c->endKind = kind;
    c->endErrno = err;
    for (int i = 0; i < 2; i++) {
      Side* s = &c->side[i];
      if (s->fd < 0) continue;
      if (i == 0 ? resetDown : resetUp) Reset(s->fd);
      if (s->registered && !c->ownFds) {
        epoll_event dummy{};
        epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, &dummy);
        s->registered = false;
      }
      close(s->fd);
      s->fd = -1;
      std::vector<char>().swap(s->pending);
    }
    finished_.push_back(c->id);
  }

  // After a batch of events: forget the finished connections and report them to JS (one call per batch).
  void Reap() {
    bool call = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_.empty() && events_.empty()) return;
      for (uint32_t id : finished_) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;
        Conn* c = it->second.get();
        ended_.push_back(Ended{c->id, c->bytes[0].load(), c->bytes[1].load(), c->endKind, c->endErrno});
        conns_.erase(it);
      }
      if (!callPending_ && (!ended_.empty() || !events_.empty())) {
        callPending_ = true;
        call = true;
      }
    }
    finished_.clear();
    if (call && napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) {
      std::lock_guard<std::mutex> lock(mu_);
      callPending_ = false;
    }
  }

  // On the JS thread: hand the events and the ended connections to onReport (events first: an accepted connection is
  // known before its end).
  static void CallJs(napi_env env, napi_value cb, void* context, void* /*data*/) {
    auto* self = static_cast<Forwarder*>(context);
    std::vector<Ended> batch;
    std::vector<Event> events;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      batch.swap(self->ended_);
      events.swap(self->events_);
      self->callPending_ = false;
    }
    if (env == nullptr || cb == nullptr) return;
    for (auto& ev : events) {
      if (ev.kind == EV_ACCEPTED && ev.conn != nullptr) self->live_.emplace(ev.id, std::move(ev.conn));
    }
    for (auto& e : batch) self->live_.erase(e.id);
    if (batch.empty() && events.empty()) return;
    napi_value args[3];
    args[0] = Doubles(env, batch.size() * kEndedFields, [&](double* d) {
      for (size_t i = 0; i < batch.size(); i++) {
        d[i * kEndedFields + 0] = batch[i].id;
        d[i * kEndedFields + 1] = batch[i].in;
        d[i * kEndedFields + 2] = batch[i].out;
        d[i * kEndedFields + 3] = batch[i].kind;
        d[i * kEndedFields + 4] = batch[i].err;
      }
    });
    args[1] = Doubles(env, events.size() * kEventFields, [&](double* d) {
      for (size_t i = 0; i < events.size(); i++) {
        const Event& ev = events[i];
        double* r = d + i * kEventFields;
        r[0] = ev.kind;
        r[1] = ev.id;
        r[2] = ev.a;
        r[3] = ev.b;
        r[4] = ev.c;
        r[5] = ev.d;
      }
    });
    napi_create_array(env, &args[2]);
    uint32_t x = 0;
    for (const Event& ev : events) {
      napi_value v;
      if (ev.kind == EV_ACCEPTED) {
        napi_create_string_latin1(env, ev.text1.data(), ev.text1.size(), &v);
        napi_set_element(env, args[2], x++, v);
        napi_create_string_latin1(env, ev.text2.data(), ev.text2.size(), &v);
        napi_set_element(env, args[2], x++, v);
      } else if (ev.kind == EV_CLIENT_DATA || ev.kind == EV_SERVER_DATA) {
        void* out = nullptr;
        napi_create_buffer_copy(env, ev.bytes.size(), ev.bytes.data(), &out, &v);
        napi_set_element(env, args[2], x++, v);
      }
    }
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, cb, 3, args, nullptr);
  }

  template <typename Fill>
  static napi_value Doubles(napi_env env, size_t count, Fill fill) {
    napi_value ab;
    void* data = nullptr;
    napi_create_arraybuffer(env, count * sizeof(double), &data, &ab);
    if (count > 0 && data != nullptr) fill(static_cast<double*>(data));
    napi_value arr;
    napi_create_typedarray(env, napi_float64_array, count, ab, 0, &arr);
    return arr;
  }

  static void Cleanup(void* arg) { static_cast<Forwarder*>(arg)->Stop(); }

  // Stop the thread and reset what is still open (the environment is going away: nobody is left to report to).
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (thread_.joinable()) {
      stop_.store(true);
      uint64_t one = 1;
      ssize_t r = write(evfd_, &one, sizeof(one));
      (void)r;
      thread_.join();
    }
    for (auto& kv : listeners_) close(kv.second->fd);
    listeners_.clear();
    for (auto& cmd : commands_) {
      if (cmd.listener != nullptr && cmd.kind == Command::LISTEN) close(cmd.listener->fd);
    }
    for (auto& kv : conns_) {
      Conn* c = kv.second.get();
      if (c->released.load()) continue;
      for (int i = 0; i < 2; i++) {
        if (c->side[i].fd < 0) continue;
        Reset(c->side[i].fd);
        close(c->side[i].fd);
        c->side[i].fd = -1;
      }
    }
    conns_.clear();
    for (auto& cmd : commands_) {
      if (cmd.conn == nullptr) continue;
      for (int i = 0; i < 2; i++) {
        if (cmd.conn->side[i].fd < 0) continue;
        Reset(cmd.conn->side[i].fd);
        close(cmd.conn->side[i].fd);
        cmd.conn->side[i].fd = -1;
      }
    }
    commands_.clear();
    live_.clear();
    if (epfd_ >= 0) close(epfd_);
    if (evfd_ >= 0) close(evfd_);
    epfd_ = evfd_ = -1;
  }

  napi_env env_;
  napi_threadsafe_function tsfn_ = nullptr;
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  // A write to evfd_ is pending (Push); cleared by the thread before it takes the commands.
  std::atomic<bool> wakePending_{false};
  // Set by the thread when bytes moved, cleared by Deltas().
  std::atomic<bool> moved_{true};
  bool stopped_ = false;
  // Ids are taken by the JS thread (forwarderAdd) and the thread (accept).
  std::atomic<uint32_t> nextId_{1};
  std::atomic<uint32_t> nextListener_{1};
  // The thread only: the listeners it accepts on, by handle.
  std::unordered_map<uint32_t, std::shared_ptr<Listener>> listeners_;
  // Shared, under mu_: what the next report carries besides ends.
  std::vector<Event> events_;
  // JS thread only: every connection handed over and not yet reported ended.
  std::unordered_map<uint32_t, std::shared_ptr<Conn>> live_;
  // The thread only.
  std::unordered_map<uint32_t, std::shared_ptr<Conn>> conns_;
  std::vector<uint32_t> finished_;
  uint32_t minTimeout_ = 0;
  int resting_ = 0;
  // Shared, under mu_.
  std::mutex mu_;
  std::vector<Command> commands_;
  std::vector<Ended> ended_;
  bool callPending_ = false;
};

// === N-API glue ===
Forwarder* Instance(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<Forwarder*>(data);
}

napi_value Num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

bool ArgInt(napi_env env, napi_value v, int64_t* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  return napi_get_value_int64(env, v, out) == napi_ok;
}

// A Buffer/Uint8Array argument, or undefined (len 0).
bool ArgBytes(napi_env env, napi_value v, const char** data, size_t* len) {
  *data = nullptr;
  *len = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined || t == napi_null) return true;
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return false;
  napi_typedarray_type type;
  size_t length;
  void* p;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) != napi_ok || type != napi_uint8_array) return false;
  *data = static_cast<const char*>(p);
  *len = length;
  return true;
}

napi_value ForwarderInit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) return Num(env, -EINVAL);
  if (Instance(env) != nullptr) return Num(env, -EALREADY);
  auto* f = new Forwarder(env);
  int rc = f->Init(argv[0]);
  if (rc != 0) {
    delete f;
    return Num(env, rc);
  }
  napi_set_instance_data(env, f, [](napi_env, void* data, void*) { delete static_cast<Forwarder*>(data); }, nullptr);
  return Num(env, 0);
}

napi_value ForwarderAdd(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Forwarder* f = Instance(env);
  if (f == nullptr) return Num(env, -ENODEV);
  int64_t down, up, idle;
  if (argc < 3 || !ArgInt(env, argv[0], &down) || !ArgInt(env, argv[1], &up) || !ArgInt(env, argv[2], &idle)) return Num(env, -EINVAL);
  if (down < 0 || up < 0 || down > INT32_MAX || up > INT32_MAX) return Num(env, -EBADF);
  if (idle < 0 || idle > UINT32_MAX) return Num(env, -EINVAL);
  const char* toUp = nullptr;
  const char* toDown = nullptr;
  size_t toUpLen = 0, toDownLen = 0;
  if (argc > 3 && !ArgBytes(env, argv[3], &toUp, &toUpLen)) return Num(env, -EINVAL);
  if (argc > 4 && !ArgBytes(env, argv[4], &toDown, &toDownLen)) return Num(env, -EINVAL);
  return Num(env, f->Add(static_cast<int>(down), static_cast<int>(up), static_cast<uint32_t>(idle), toUp, toUpLen, toDown, toDownLen));
}

// The arguments of a call that names a connection: (id, ...rest); false (and *rc set) when they are not usable.
bool ConnArgs(napi_env env, napi_callback_info info, size_t want, napi_value* argv, Forwarder** f, uint32_t* id, int* rc) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  *f = Instance(env);
  if (*f == nullptr) {
    *rc = -ENODEV;
    return false;
  }
  int64_t v;
  if (argc < want || !ArgInt(env, argv[0], &v) || v <= 0 || v > UINT32_MAX) {
    *rc = -EINVAL;
    return false;
  }
  *id = static_cast<uint32_t>(v);
  return true;
}

// A call that names one connection (or listener) and returns a value or -errno: forwarderAbort, forwarderUnlisten,
// forwarderRelease, forwarderWatchDone.
template <int (Forwarder::*Method)(uint32_t)>
napi_value ById(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Forwarder* f;
  uint32_t id;
  int rc;
  if (!ConnArgs(env, info, 1, argv, &f, &id, &rc)) return Num(env, rc);
  return Num(env, (f->*Method)(id));
}

napi_value ForwarderBytes(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Forwarder* f;
  uint32_t id;
  int rc;
  if (!ConnArgs(env, info, 2, argv, &f, &id, &rc)) return Num(env, rc);
  bool is = false;
  napi_is_typedarray(env, argv[1], &is);
  if (!is) return Num(env, -EINVAL);
  napi_typedarray_type type;
  size_t length;
  void* p;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &p, &ab, &offset) != napi_ok || type != napi_float64_array || length < 2) {
    return Num(env, -EINVAL);
  }
  return Num(env, f->Bytes(id, static_cast<double*>(p), length));
}

napi_value ForwarderDeltas(napi_env env, napi_callback_info /*info*/) {
  Forwarder* f = Instance(env);
  std::vector<double> d;
  if (f != nullptr) d = f->Deltas();
  napi_value ab;
  void* data = nullptr;
  napi_create_arraybuffer(env, d.size() * sizeof(double), &data, &ab);
  if (!d.empty()) memcpy(data, d.data(), d.size() * sizeof(double));
  napi_value arr;
  napi_create_typedarray(env, napi_float64_array, d.size(), ab, 0, &arr);
  return arr;
}

napi_value ForwarderLive(napi_env env, napi_callback_info /*info*/) {
  Forwarder* f = Instance(env);
  return Num(env, f == nullptr ? 0 : static_cast<double>(f->Live()));
}

napi_value ForwarderListen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Forwarder* f = Instance(env);
  if (f == nullptr) return Num(env, -ENODEV);
  int64_t fd;
  if (argc < 1 || !ArgInt(env, argv[0], &fd)) return Num(env, -EINVAL);
  if (fd < 0 || fd > INT32_MAX) return Num(env, -EBADF);
  return Num(env, f->Listen(static_cast<int>(fd)));
}

// An IP address string (and a port) as a sockaddr: false when it is not one.
bool ArgAddress(napi_env env, napi_value v, int port, sockaddr_storage* out, socklen_t* len) {
  char text[INET6_ADDRSTRLEN + 1] = {0};
  size_t n = 0;
  if (napi_get_value_string_latin1(env, v, text, sizeof(text), &n) != napi_ok || n == 0 || n >= sizeof(text) - 1) return false;
  *out = sockaddr_storage{};
  auto* a4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* a6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool ArgMs(napi_env env, napi_value v, uint32_t* out) {
  int64_t x;
  if (!ArgInt(env, v, &x) || x < 0 || x > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(x);
  return true;
}

// forwarderConnect(id, address, port, bindAddress | undefined, connectTimeoutMs, idleTimeoutMs, detectTimeoutMs, notify)
napi_value ForwarderConnect(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  Forwarder* f;
  uint32_t id;
  int rc;
  if (!ConnArgs(env, info, 8, argv, &f, &id, &rc)) return Num(env, rc);
  auto p = std::make_shared<ConnectParams>();
  int64_t port;
  if (!ArgInt(env, argv[2], &port) || port <= 0 || port > 65535) return Num(env, -EINVAL);
  if (!ArgAddress(env, argv[1], static_cast<int>(port), &p->addr, &p->addrLen)) return Num(env, -EINVAL);
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t == napi_string) {
    if (!ArgAddress(env, argv[3], 0, &p->bind, &p->bindLen) || p->bind.ss_family != p->addr.ss_family) return Num(env, -EINVAL);
  } else if (t != napi_undefined) {
    return Num(env, -EINVAL);
  }
  if (!ArgMs(env, argv[4], &p->connectMs) || !ArgMs(env, argv[5], &p->idleMs) || !ArgMs(env, argv[6], &p->detectMs)) return Num(env, -EINVAL);
  bool notify = false;
  if (napi_get_value_bool(env, argv[7], &notify) != napi_ok) return Num(env, -EINVAL);
  p->notify = notify;
  return Num(env, f->Connect(id, std::move(p)));
}

}  // namespace

// Called from original_dst.cc's module init.
void RegisterTcpForwarder(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback cb;
  } fns[] = {
      {"forwarderInit", ForwarderInit}, {"forwarderAdd", ForwarderAdd},       {"forwarderAbort", ById<&Forwarder::Abort>},
      {"forwarderBytes", ForwarderBytes}, {"forwarderDeltas", ForwarderDeltas}, {"forwarderLive", ForwarderLive},
      {"forwarderListen", ForwarderListen}, {"forwarderUnlisten", ById<&Forwarder::Unlisten>}, {"forwarderConnect", ForwarderConnect},
      {"forwarderRelease", ById<&Forwarder::Release>}, {"forwarderWatchDone", ById<&Forwarder::WatchDone>},
  };
  for (const auto& fn : fns) {
    napi_value v;
    napi_create_function(env, fn.name, NAPI_AUTO_LENGTH, fn.cb, nullptr, &v);
    napi_set_named_property(env, exports, fn.name, v);
  }
  napi_value fields;
  napi_create_int32(env, kEndedFields, &fields);
  napi_set_named_property(env, exports, "FORWARDER_ENDED_FIELDS", fields);
  napi_value eventFields;
  napi_create_int32(env, kEventFields, &eventFields);
  napi_set_named_property(env, exports, "FORWARDER_EVENT_FIELDS", eventFields);
}
