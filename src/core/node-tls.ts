// node:tls, loaded on first use. An idle proxy with no TLS material and no workload identity never builds a secure
// context, a TLS socket or a TLS server, so it does not load node:tls (with _tls_wrap and _tls_common: ~0.3 MB of RSS,
// docs/performance-notes.md "Idle RSS ... second part"). Modules that need it call nodeTls() at the point of use and
// import only its types statically (`import type * as tls from 'node:tls'`). Works in the ES modules and in the proxy
// bundle (where import.meta.url is the bundle's URL): node:tls is a builtin, so the base URL only has to be valid.
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

let loaded: typeof Tls | undefined;

/** The node:tls module, required the first time it is asked for. */
export function nodeTls(): typeof Tls {
  loaded ??= createRequire(import.meta.url)('node:tls') as typeof Tls;
  return loaded;
}
