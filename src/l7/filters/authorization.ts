// The authorization filter (inbound HTTP): every request is decided by the [authorization NAME] policies
// (src/authz/authorizer.ts) on the client's SPIFFE ID (mesh mTLS), its address, the original destination port, the
// method, the path (without the query), the host and the headers, before it is routed. A denied request gets the
// local reply rbac-denied: 403 with the body "RBAC: access denied" and x-remora-error: rbac-denied (a gRPC request:
// grpc-status 7, PERMISSION_DENIED); the connection stays open for the next request. Decisions are counted and
// logged with the policy's name (src/authz/decision-recorder.ts).
import type { Authorizer } from '../../authz/authorizer.js';
import type { DecisionRecorder } from '../../authz/decision-recorder.js';
import { replyLocally } from '../router/local-replies.js';
import type { HttpFilter } from '../request-types.js';

/** The value of a header by lower-case name, repeated headers joined with ", " (as Node joins them). */
function joinedHeader(raw: readonly string[], lowerName: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue;
    const value = raw[i + 1] as string;
    out = out === undefined ? value : `${out}, ${value}`;
  }
  return out;
}

export function authorizationFilter(authorizer: Authorizer, recorder: DecisionRecorder): HttpFilter {
  return (next) => (req, res) => {
    const d = req.downstream;
    const head = req.head;
    const decision = authorizer.checkRequest({
      peerIdentity: d.conn.peerIdentity,
      sourceIp: d.conn.sourceAddress,
      destinationPort: d.conn.originalDst.port,
      method: head.method,
      path: head.path,
      host: head.authority,
      header: (name) => joinedHeader(d.headers, name),
    });
    recorder.record('http', decision, () => ({
      requestId: req.requestId, peerIdentity: d.conn.peerIdentity, source: d.conn.sourceAddress, port: d.conn.originalDst.port,
      method: head.method, path: head.path, authority: head.authority,
    }), d.log);
    if (decision.allowed) {
      next(req, res);
      return;
    }
    replyLocally(req, res, 'rbac-denied', undefined);
  };
}
