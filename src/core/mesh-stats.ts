// Counters of mesh security, for /stats `mtls`, `identity` and `authz`. Names are bounded: handshake failure reasons
// are OpenSSL's / Node's codes or remora's own (no-peer-certificate, no-spiffe-id, peer-identity, ...); policy names
// come from the config.
//   mtls.outbound   handshakes (verified, ready), failures.<reason>
//   mtls.inbound    handshakes, failures.<reason>, refused.plaintext / refused.foreign-tls (strict ports),
//                   plaintext (permissive: accepted without mTLS)
//   identity        rotations (a new identity in force), rejected (new files not usable: the last good one serves)
//   authz           <listener>.allowed / .denied / .audited, and per policy: policy.<name>.denied / .allowed / .audited
import { CounterMap } from './stats.js';

export interface MeshStatsJson {
  readonly mtls: { readonly outbound: Readonly<Record<string, number>>; readonly inbound: Readonly<Record<string, number>> };
  readonly identity: Readonly<Record<string, number>>;
  readonly authz: Readonly<Record<string, number>>;
}

export class MeshStats {
  readonly outbound = new CounterMap();
  readonly inbound = new CounterMap();
  readonly identity = new CounterMap();
  readonly authz = new CounterMap();

  json(): MeshStatsJson {
    return {
      mtls: { outbound: this.outbound.json(), inbound: this.inbound.json() },
      identity: this.identity.json(),
      authz: this.authz.json(),
    };
  }
}
