// The http1-tunnel suite again, with every downstream connection on its accepted TCP handle (no net.Socket: the engine's
// HandleTransport, src/core/tcp-handle.ts), as a capture listener with the HTTP engine serves HTTP/1.1.
process.env['L7_DOWNSTREAM'] = 'handle';
await import('../http1-tunnel.test.js');
