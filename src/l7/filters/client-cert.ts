// The client-certificate filter (inbound): the app learns who called it. A request that came over mesh mTLS gets
// `x-forwarded-client-cert` in Envoy's format, with the server's own identity, the SHA-256 of the client's
// certificate and the client's SPIFFE ID:
//   x-forwarded-client-cert: By=spiffe://cluster.local/ns/prod/sa/api;Hash=<hex>;URI=spiffe://cluster.local/ns/prod/sa/web
// Any x-forwarded-client-cert the request already carried is removed first (Envoy's SANITIZE_SET): an app can trust
// the header because only its sidecar can have written it — a plaintext request reaches the app without one.
import { removeHeader } from '../http/headers.js';
import type { HttpFilter } from '../request-types.js';

export const XFCC_HEADER = 'x-forwarded-client-cert';

/** `localIdentity`: the workload's own SPIFFE ID (undefined without an identity: the header is only removed). */
export function clientCertFilter(localIdentity: string | undefined): HttpFilter {
  return (next) => (req, res) => {
    const d = req.downstream;
    const headers = d.headers;
    removeHeader(headers, XFCC_HEADER);
    const peer = d.conn.peerIdentity;
    if (peer !== undefined && localIdentity !== undefined) {
      headers.push(XFCC_HEADER, `By=${localIdentity};Hash=${d.conn.peerCertificateHash ?? ''};URI=${peer}`);
    }
    next(req, res);
  };
}
