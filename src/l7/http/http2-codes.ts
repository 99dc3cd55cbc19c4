// The HTTP/2 numbers the engine and the pool use, as RFC 9113 fixes them (the values of node:http2's `constants` of
// the same names), so that using them does not load node:http2 (src/core/lazy-builtins.ts).

/** Error codes (RFC 9113 §7). */
export const NGHTTP2_NO_ERROR = 0;
export const NGHTTP2_INTERNAL_ERROR = 2;
export const NGHTTP2_REFUSED_STREAM = 7;
export const NGHTTP2_CANCEL = 8;
/** The END_STREAM flag of HEADERS and DATA frames (RFC 9113 §6.1, §6.2). */
export const NGHTTP2_FLAG_END_STREAM = 1;
/** The response's status pseudo-header. */
export const HTTP2_HEADER_STATUS = ':status';
