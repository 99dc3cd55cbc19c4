// TLS origination: the app sends plaintext, remora opens TLS to the endpoint. One TlsOriginator per service, built at
// startup from the service's tls_* keys and the PEM files read then (a missing or bad file is a configuration
// error, reported before the proxy starts). Verification is on unless tls_insecure_skip_verify is set: the chain
// must lead to the CA bundle (tls_ca_file) or, without one, to the default trust store, and the certificate must
// match the SNI (tls_sni / the service's host name / its dns_name) or, without a name, the endpoint's IP address.
//
// Failures are classified by when they happen: before the TCP connection is established they are connect failures
// (retried on another endpoint, passive health); after it, during the handshake, they are TLS failures
// (REMORA_ERR_UPSTREAM_TLS, not retried: a CA or name mismatch fails on every endpoint alike). `tlsFailureCode()`
// extracts the OpenSSL/Node reason (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID, ...) for the log.
import type { Socket } from 'node:net';
import type * as tls from 'node:tls';
import { nodeTls } from '../../core/lazy-builtins.js';
import type { TlsOriginationSpec } from '../../config/tls-settings.js';
import type { HandshakeFailureCode, UpstreamTransport } from './upstream-transport.js';

/** PEM contents of the files a service names (read with the config, part of its snapshot). */
export interface TlsMaterial {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

type CaSource = 'tls_ca_file' | 'default' | 'default+system';

interface NodeWithSystemCa {
  getCACertificates?: (type: 'default' | 'system' | 'bundled' | 'extra') => string[];
}

/** The default trust store: Node's bundled roots (and NODE_EXTRA_CA_CERTS), plus the OS store where Node exposes it. */
function defaultTrust(): { ca: string[] | undefined; source: CaSource } {
  const get = (nodeTls() as unknown as NodeWithSystemCa).getCACertificates;
  if (typeof get !== 'function') return { ca: undefined, source: 'default' };
  try {
    return { ca: [...get('default'), ...get('system')], source: 'default+system' };
  } catch {
    return { ca: undefined, source: 'default' };
  }
}

export class TlsOriginator implements UpstreamTransport {
  readonly kind = 'tls';
  readonly spec: TlsOriginationSpec;
  /** Where trusted CAs come from (for the startup log). */
  readonly caSource: CaSource;
  readonly #context: tls.SecureContext;
  readonly #alpn: string[] | undefined;

  /** Throws (Node's error) when a PEM cannot be used: bad certificate, key not matching the certificate, ... */
  constructor(spec: TlsOriginationSpec, material: TlsMaterial) {
    this.spec = spec;
    let ca: string | string[] | undefined = material.ca;
    let caSource: CaSource = 'tls_ca_file';
    if (ca === undefined) ({ ca, source: caSource } = defaultTrust());
    this.caSource = caSource;
    this.#context = nodeTls().createSecureContext({
      ...(ca === undefined ? {} : { ca }),
      ...(material.cert === undefined ? {} : { cert: material.cert }),
      ...(material.key === undefined ? {} : { key: material.key }),
      minVersion: spec.minVersion,
    });
    this.#alpn = spec.alpn.length === 0 ? undefined : [...spec.alpn];
  }

  /** The port TLS is opened to for an endpoint listening on `endpointPort` (tls_port wins). */
  portFor(endpointPort: number): number {
    return this.spec.port ?? endpointPort;
  }

  /**
   * TLS over `tcp` (a socket still connecting, from src/upstream/transport/connect.ts): the handshake starts once
   * TCP is up. 'secureConnect' = verified and ready. `host` is the endpoint's address, checked against the
   * certificate when there is no server name.
   */
  readonly classify = classifyTls;

  wrap(tcp: Socket, host: string): tls.TLSSocket {
    const s = this.spec;
    return nodeTls().connect({
      socket: tcp,
      host,
      ...(s.serverName === undefined ? {} : { servername: s.serverName }),
      secureContext: this.#context,
      minVersion: s.minVersion,
      ...(this.#alpn === undefined ? {} : { ALPNProtocols: this.#alpn }),
      rejectUnauthorized: s.verify,
      allowHalfOpen: true,
    } as tls.ConnectionOptions & { allowHalfOpen: boolean });
  }
}

/** TLS origination's failures are all REMORA_ERR_UPSTREAM_TLS, with OpenSSL's/Node's reason. */
function classifyTls(err: Error): { code: HandshakeFailureCode; reason: string } {
  return { code: 'REMORA_ERR_UPSTREAM_TLS', reason: tlsFailureCode(err) };
}

/** The reason of a failed handshake: OpenSSL's verify code or Node's (ERR_TLS_..., ERR_SSL_...), else the system code. */
export function tlsFailureCode(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : 'ERR_TLS_HANDSHAKE';
}
