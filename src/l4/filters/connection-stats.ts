// The connection stats filter: counts each connection of a listener (accepted, active, closed), counts its failure
// under its error code, and writes its one log line when it ends (warn with the code for a failure, debug otherwise).
// A cross-cutting concern, so a connection filter (src/l4/connection-context.ts) rather than code in the stages.
// With an observer (metrics or access logs on: src/telemetry/), it also hands the connection and its outcome (the
// connection's one observation) to the observer once, when the connection ends.
import { formatHostPort } from '../../core/addr.js';
import { isSystemError, type RemoraErrorCode } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ListenerCounters, Stats } from '../../core/stats.js';
import { derivedContext, type ConnectionContext, type ConnectionFilter, type ConnectionOutcome, type ForwardingWatcher } from '../connection-context.js';

/** The log message of a failed connection, by code. */
export const CONNECTION_FAILURE_MESSAGES: Readonly<Partial<Record<RemoraErrorCode, string>>> = {
  REMORA_ERR_UPSTREAM_CONNECT: 'connecting to the upstream failed; downstream reset',
  REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT: 'connecting to the upstream timed out; downstream reset',
  REMORA_ERR_UPSTREAM_RESET: 'the upstream failed the connection; downstream reset',
  REMORA_ERR_DOWNSTREAM_RESET: 'the downstream failed the connection; upstream reset',
  REMORA_ERR_DRAIN_TIMEOUT: 'connection still open at the drain deadline; both sides reset',
  REMORA_ERR_UPSTREAM_TLS: 'the TLS handshake with the upstream failed; downstream reset',
  REMORA_ERR_NO_HEALTHY_ENDPOINT: 'the service has no endpoint to connect to; downstream reset',
  REMORA_ERR_UNKNOWN_DESTINATION: 'no service matches the destination and the registry is registry-only; downstream reset',
  REMORA_ERR_MTLS_HANDSHAKE: 'the mesh mTLS handshake failed; connection closed',
  REMORA_ERR_MTLS_REQUIRED: 'strict mTLS: the connection is not mesh mTLS; connection closed',
  REMORA_ERR_PEER_IDENTITY: "the endpoint's SPIFFE ID is not one the service accepts; downstream reset",
  REMORA_ERR_AUTHZ_DENIED: 'an authorization policy denied the connection; connection closed',
  REMORA_ERR_INTERNAL: 'an internal error ended the connection',
};

export function connectionFields(conn: ConnectionContext): Record<string, unknown> {
  return {
    conn: conn.id,
    listener: conn.direction,
    peer: conn.peerAddress === undefined ? undefined : formatHostPort(conn.peerAddress, conn.peerPort ?? 0),
    origDst: formatHostPort(conn.originalDst.address, conn.originalDst.port),
  };
}

/** Watches one connection: when its forwarding begins (ForwardingWatcher) and how it ended. */
export interface ConnectionWatch extends ForwardingWatcher {
  closed(outcome: ConnectionOutcome): void;
}

/** Hears every connection of a listener: a watch per connection (undefined: not this one, or nothing is on). */
export interface ConnectionObserver {
  open(conn: ConnectionContext): ConnectionWatch | undefined;
}

export function connectionStatsFilter(deps: {
  readonly counters: ListenerCounters; readonly stats: Stats; readonly log: Logger; readonly observe?: ConnectionObserver | undefined;
}): ConnectionFilter {
  const { counters, stats, log, observe } = deps;
  return (next) => (conn, done) => {
    counters.accepted++;
    counters.active++;
    if (log.isLevelEnabled('debug')) log.debug({ event: 'connection.accepted', ...connectionFields(conn) }, 'connection accepted');
    const watch = observe?.open(conn);
    next(watch === undefined ? conn : derivedContext(conn, conn.socket, conn.native, conn.handle, watch), (r: ConnectionOutcome) => {
      counters.active--;
      counters.closed++;
      const code = r.code;
      if (code !== undefined) {
        const cause = r.tlsCode ?? (isSystemError(r.error) ? r.error.code : undefined);
        stats.countError(code, cause);
      }
      if (code !== undefined || log.isLevelEnabled('debug')) {
        const fields = {
          ...connectionFields(conn),
          protocol: r.protocol,
          service: r.service,
          endpoint: r.endpoint,
          attempts: r.attempts > 1 ? r.attempts : undefined,
          http: r.http || undefined,
          peerIdentity: r.peerIdentity,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
          durMs: Date.now() - conn.startedAt,
        };
        if (code !== undefined) {
          const m = CONNECTION_FAILURE_MESSAGES[code] ?? 'connection failed';
          log.warn({ event: 'connection.failed', ...fields, code, tlsCode: r.tlsCode, err: r.error }, r.tlsCode === undefined ? m : `${m} (${r.tlsCode})`);
        } else {
          log.debug({ event: 'connection.closed', ...fields, idleTimeout: r.idleTimeout || undefined }, 'connection closed');
        }
      }
      if (watch !== undefined) {
        try {
          watch.closed(r);
        } catch (err) {
          log.error({ event: 'connection.observer-error', err, conn: conn.id, code: 'REMORA_ERR_INTERNAL' }, 'connection observer failed');
        }
      }
      done(r);
    });
  };
}
