// Counts and logs authorization decisions, the same way for opaque TCP connections and HTTP requests:
//   counters (/stats authz)   tcp.allowed, tcp.denied, http.allowed, http.denied, <kind>.audited, and per policy
//                             policy.<name>.allowed / .denied / .audited (the policy that decided, the audits that
//                             matched) / .would_deny (an audit policy that matched a connection or request that was
//                             allowed: what making that policy a deny policy would newly deny);
//   log                       a denial: one line at info, event authz.denied, with the policy (or reason
//                             no-allow-matched) and what was matched on; an audit match: event authz.audit (info),
//                             whatever the decision. Allowed requests are not logged (debug only).
import type { Logger } from '../core/log.js';
import type { MeshStats } from '../core/mesh-stats.js';
import { describeDecision, type AuthzDecision } from './authorizer.js';

export type AuthzKind = 'tcp' | 'http';

export class DecisionRecorder {
  readonly #stats: MeshStats;
  readonly #log: Logger;

  constructor(stats: MeshStats, log: Logger) {
    this.#stats = stats;
    this.#log = log;
  }

  /** Count and log `d`; `fields` describe the connection or request (for the log line only). */
  record(kind: AuthzKind, d: AuthzDecision, fields: () => Record<string, unknown>, log: Logger = this.#log): void {
    const c = this.#stats.authz;
    c.increment(d.allowed ? `${kind}.allowed` : `${kind}.denied`);
    if (d.policy !== undefined) c.increment(`policy.${d.policy}.${d.allowed ? 'allowed' : 'denied'}`);
    if (d.audited.length > 0) {
      c.increment(`${kind}.audited`);
      for (const name of d.audited) {
        c.increment(`policy.${name}.audited`);
        if (d.allowed) c.increment(`policy.${name}.would_deny`);
      }
      log.info({ event: 'authz.audit', kind, audited: d.audited, allowed: d.allowed, policy: d.policy, reason: d.reason, ...fields() },
        `authorization audit: ${d.audited.join(', ')} matched (${describeDecision(d)})`);
    }
    if (!d.allowed) {
      log.info({ event: 'authz.denied', kind, policy: d.policy, reason: d.reason, code: 'REMORA_ERR_AUTHZ_DENIED', ...fields() },
        `authorization: ${describeDecision(d)}`);
    } else if (log.isLevelEnabled('debug')) {
      log.debug({ event: 'authz.allowed', kind, policy: d.policy, reason: d.reason, ...fields() }, `authorization: ${describeDecision(d)}`);
    }
  }
}
