// The one registry of remora's error codes. Every code is documented in docs/errors.md (a unit test keeps the two
// in sync). Per-connection errors are counted by code in the proxy's stats and logged; they never reach the top.
import { getSystemErrorName } from 'node:util';

export const ERROR_CODES = {
  REMORA_ERR_USAGE: 'the command line is not valid (unknown command or flag, missing value)',
  REMORA_ERR_CONFIG_INVALID: 'a configuration value (file, environment or flag) is not valid',
  REMORA_ERR_CONFIG_READ: 'the configuration file cannot be read',
  REMORA_ERR_PERMISSION: 'the operation needs privileges the process does not have (root or CAP_NET_ADMIN)',
  REMORA_ERR_IPTABLES_MISSING: 'no usable iptables binary for an address family that must be configured',
  REMORA_ERR_IPV6_UNSUPPORTED: 'the pod has IPv6 addresses but IPv6 rules cannot be applied',
  REMORA_ERR_RULES_APPLY: 'iptables-restore rejected the rules; the previous ruleset was kept',
  REMORA_ERR_RULES_VERIFY: 'the rules read back after applying differ from the intended rules',
  REMORA_ERR_RULES_READ: 'the current rules cannot be read with iptables-save',
  REMORA_ERR_LOCK: 'another remora init holds the lock for this network namespace',
  REMORA_ERR_NATIVE_LOAD: 'the native addon (native/build/Release/remora_native.node) cannot be loaded',
  REMORA_ERR_ORIGINAL_DST: 'the original destination of an accepted connection cannot be read',
  REMORA_ERR_NOT_REDIRECTED: 'a connection reached a capture listener without being redirected to it',
  REMORA_ERR_UPSTREAM_CONNECT: 'connecting to the upstream failed (refused, unreachable)',
  REMORA_ERR_UPSTREAM_CONNECT_TIMEOUT: 'connecting to the upstream did not finish within the connect timeout',
  REMORA_ERR_UPSTREAM_RESET: 'the upstream reset or failed the connection while forwarding',
  REMORA_ERR_DOWNSTREAM_RESET: 'the downstream (the client) reset or failed the connection while forwarding',
  REMORA_ERR_UPSTREAM_TLS: 'the TLS handshake with the upstream failed (certificate not verified, name mismatch, protocol version, alert)',
  REMORA_ERR_NO_HEALTHY_ENDPOINT: 'the service has no endpoint to connect to (none configured or discovered, or all ejected or unhealthy)',
  REMORA_ERR_UNKNOWN_DESTINATION: 'a destination that matches no service was refused ([registry] mode = registry-only)',
  REMORA_ERR_LISTEN: 'a listener cannot be bound',
  REMORA_ERR_UID_MISMATCH: "the proxy runs as a uid/gid other than the one the rules exclude (traffic would loop)",
  REMORA_ERR_DRAIN_TIMEOUT: 'connections still open at the end of the drain deadline were closed',
  REMORA_ERR_NOT_READY: 'remora wait-ready: the local sidecar did not answer /ready with 200 before the timeout',
  REMORA_ERR_CA: 'a remora ca command cannot do what was asked (no CA in the directory, a CA already there, an expired or retired root, a TTL beyond the root)',
  REMORA_ERR_IDENTITY: "the workload identity files (identity_dir: cert-chain.pem, key.pem, root-cert.pem) changed to something not usable; the previous identity keeps serving",
  REMORA_ERR_MTLS_HANDSHAKE: 'a mesh mTLS handshake failed (certificate of an untrusted root, expired or not yet valid, no client certificate, not an X.509-SVID)',
  REMORA_ERR_MTLS_REQUIRED: 'inbound mTLS is strict on this port and the connection was not mesh mTLS (plaintext or foreign TLS)',
  REMORA_ERR_PEER_IDENTITY: "the endpoint's certificate carries a SPIFFE ID that the service's identities do not accept",
  REMORA_ERR_AUTHZ_DENIED: 'an authorization policy denied the connection or the request',
  REMORA_ERR_ADMIN_REQUEST: "the local sidecar's admin API cannot be reached, or refused the request (remora explain)",
  REMORA_ERR_TRACE_EXPORT: 'spans could not be sent to the tracing collector (refused, no answer in time, a non-2xx status): they were dropped and counted',
  REMORA_ERR_CONTROL_STORE: "the control plane's store cannot be used (the data directory is held by another remora control, unreadable, or its state file is damaged; or no etcd member answers, etcd has no quorum, or a value under /remora/state/ is not a remora object)",
  REMORA_ERR_CONTROL_INVALID: 'a write to the control plane would make the desired state invalid (the same checks as a config file); nothing was stored',
  REMORA_ERR_CONTROL_CONFLICT: 'a write to the control plane expected another version of an object (changed meanwhile); nothing was stored',
  REMORA_ERR_CONTROL_REQUEST: 'a control-plane API request is malformed, names an unknown object or path, or uses a method the path does not allow',
  REMORA_ERR_CONTROL_AUTH: 'a control-plane API request has no valid bearer token (401) or its token lacks the scope (403)',
  REMORA_ERR_CONTROL_UNREACHABLE: 'the control plane cannot be reached or its TLS certificate is not verified by the CA file',
  REMORA_ERR_WORKER: 'a worker process (workers > 1) exited, could not start, or did not answer the primary in time',
  REMORA_ERR_INTERNAL: 'an unexpected internal error; please report it',
} as const;

export type RemoraErrorCode = keyof typeof ERROR_CODES;

export interface RemoraErrorOptions {
  cause?: unknown;
  /** Extra structured fields, logged with the error. */
  details?: Readonly<Record<string, unknown>>;
}

export class RemoraError extends Error {
  readonly code: RemoraErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: RemoraErrorCode, message: string, options: RemoraErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RemoraError';
    this.code = code;
    this.details = options.details;
  }
}

/** A Node-style system error (`code`, `errno` (negative), `syscall`), as node:net produces them. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function systemError(negativeErrno: number, syscall: string): SystemError {
  const code = getSystemErrorName(negativeErrno);
  const err = new Error(`${syscall} ${code}`) as SystemError;
  err.code = code;
  err.errno = negativeErrno;
  err.syscall = syscall;
  return err;
}

export function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as Partial<SystemError>).code === 'string'
    && typeof (err as Partial<SystemError>).syscall === 'string';
}

export function isRemoraError(err: unknown): err is RemoraError {
  return err instanceof RemoraError;
}

/** The code to count an error under: our code, else the system code, else REMORA_ERR_INTERNAL. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof RemoraError) return err.code;
  if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string') {
    return (err as unknown as { code: string }).code;
  }
  return 'REMORA_ERR_INTERNAL';
}
