// Node builtins an idle proxy does not need, loaded on first use: node:tls (with _tls_wrap and _tls_common: ~0.3 MB
// of RSS) for a proxy with no TLS material and no workload identity, node:http2 (with tls, assert and fs/promises:
// ~1.6 MB) for an HTTP engine that has not yet seen an HTTP/2 connection (docs/performance-notes.md, "Idle RSS ...
// second part" and "third part"). Modules that need one call its function at the point of use and import only its
// types statically (`import type * as tls from 'node:tls'`). Works in the ES modules and in the proxy bundle (where
// import.meta.url is the bundle's URL): these are builtins, so the base URL only has to be valid.
import { createRequire } from 'node:module';
import type * as Http2 from 'node:http2';
import type * as Tls from 'node:tls';

let tls: typeof Tls | undefined;
let http2: typeof Http2 | undefined;

/** The node:tls module, required the first time it is asked for. */
export function nodeTls(): typeof Tls {
  tls ??= createRequire(import.meta.url)('node:tls') as typeof Tls;
  return tls;
}

/** The node:http2 module, required the first time it is asked for. */
export function nodeHttp2(): typeof Http2 {
  http2 ??= createRequire(import.meta.url)('node:http2') as typeof Http2;
  return http2;
}
