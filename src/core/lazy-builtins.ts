// Node builtins an idle proxy does not need, loaded on first use: node:tls (with _tls_wrap and _tls_common: ~0.3 MB
// of RSS) for a proxy with no TLS material and no workload identity, node:http2 (with tls, assert and fs/promises:
// ~1.6 MB) for an HTTP engine that has not yet seen an HTTP/2 connection, node:dns/promises (~0.3 MB) until a service
// is discovered through DNS, node:v8 and node:vm for the idle trim's fallback only (docs/performance-notes.md, "Idle
// RSS ... second part" and "Issue 15, fourth part"). Modules that need one call its function at the point of use and
// import only its types statically (`import type * as tls from 'node:tls'`). Works in the ES modules and in the proxy
// bundle (where import.meta.url is the bundle's URL): these are builtins, so the base URL only has to be valid. Not a
// dynamic import(): in the CommonJS bundle that would start the ES module loader (~0.5 MB).
import { createRequire } from 'node:module';
import type * as DnsPromises from 'node:dns/promises';
import type * as Http2 from 'node:http2';
import type * as Tls from 'node:tls';
import type * as V8 from 'node:v8';
import type * as Vm from 'node:vm';

/** require() for builtins; Node caches each module, so every call after the first is a lookup. */
const requireBuiltin = createRequire(import.meta.url);

function builtin<T>(name: string): T {
  return requireBuiltin(name) as T;
}

/** The node:tls module, required the first time it is asked for. */
export const nodeTls = (): typeof Tls => builtin<typeof Tls>('node:tls');
/** The node:http2 module, required the first time it is asked for. */
export const nodeHttp2 = (): typeof Http2 => builtin<typeof Http2>('node:http2');
/** The node:dns/promises module, required the first time it is asked for. */
export const nodeDnsPromises = (): typeof DnsPromises => builtin<typeof DnsPromises>('node:dns/promises');
/** node:v8 and node:vm: only the idle trim's fallback (an addon without releaseMemory) uses them. */
export const nodeV8 = (): typeof V8 => builtin<typeof V8>('node:v8');
export const nodeVm = (): typeof Vm => builtin<typeof Vm>('node:vm');
