// Authorization of opaque TCP on the inbound listener: the listener runtime's ConnectionAuthorizer, asked by the
// terminal stage right before a connection is forwarded as bytes (an HTTP connection is decided per request instead,
// src/l7/filters/authorization.ts). The attributes are what TCP knows: the client's SPIFFE ID when it came over mesh
// mTLS, its address, the original destination port. A denial is counted and logged with the policy's name
// (src/authz/decision-recorder.ts); the stage then closes the connection.
import type { Authorizer } from '../../authz/authorizer.js';
import type { DecisionRecorder } from '../../authz/decision-recorder.js';
import { formatHostPort } from '../../core/addr.js';
import type { ConnectionAuthorizer, ConnectionContext } from '../connection-context.js';

export function tcpAuthorizer(authorizer: Authorizer, recorder: DecisionRecorder): ConnectionAuthorizer {
  return (conn: ConnectionContext): boolean => {
    const d = authorizer.checkConnection({
      peerIdentity: conn.peerIdentity,
      sourceIp: conn.peerAddress ?? '',
      destinationPort: conn.originalDst.port,
    });
    recorder.record('tcp', d, () => ({
      conn: conn.id,
      peer: conn.peerAddress === undefined ? undefined : formatHostPort(conn.peerAddress, conn.peerPort ?? 0),
      peerIdentity: conn.peerIdentity,
      port: conn.originalDst.port,
    }));
    return d.allowed;
  };
}
