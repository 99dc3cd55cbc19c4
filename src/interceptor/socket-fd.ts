// The socket fd reader lives in src/core/socket-fd.ts (the accept stage and the native forwarder's hand-over both read
// fds); re-exported here for the accept stage.
export { socketFd } from '../core/socket-fd.js';
