// Bearer tokens of the control plane and their scopes (docs/control-plane.md#the-listener-tls-and-tokens):
//   read     every GET and the watch
//   write    read + every write
//   sidecar  the sync stream, ACK/NACK and CSRs (nothing else)
// `--token [SCOPE:]TOKEN` (a bare token has the write scope) and `--tokens-file FILE` (one per line, # comments).
// Tokens are compared by their SHA-256 digests with timingSafeEqual, against every known token (no early exit).
import { createHash, timingSafeEqual } from 'node:crypto';

export const TOKEN_SCOPES = ['read', 'write', 'sidecar'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** What a request needs. */
export type Need = 'read' | 'write' | 'sidecar';

const TOKEN_RE = /^[A-Za-z0-9._~+/=-]{16,512}$/;

export type TokenParse = { readonly ok: true; readonly scope: TokenScope; readonly token: string } | { readonly ok: false; readonly expected: string };

/** "[SCOPE:]TOKEN". */
export function parseTokenSpec(text: string): TokenParse {
  const t = text.trim();
  const colon = t.indexOf(':');
  const head = colon < 0 ? undefined : t.slice(0, colon);
  const scope = head === undefined ? 'write' : (TOKEN_SCOPES as readonly string[]).includes(head) ? head as TokenScope : undefined;
  const token = head === undefined ? t : t.slice(colon + 1);
  if (scope === undefined) return { ok: false, expected: `[SCOPE:]TOKEN with SCOPE one of ${TOKEN_SCOPES.join(', ')}` };
  if (!TOKEN_RE.test(token)) return { ok: false, expected: 'a token of 16-512 characters: letters, digits, ".", "_", "~", "+", "/", "=" or "-"' };
  return { ok: true, scope, token };
}

/** The lines of a tokens file: [SCOPE:]TOKEN each, blank lines and # comments ignored. Problems name the line. */
export function parseTokensFile(text: string, file: string): { tokens: { scope: TokenScope; token: string }[]; problems: string[] } {
  const tokens: { scope: TokenScope; token: string }[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const p = parseTokenSpec(t);
    if (p.ok) tokens.push({ scope: p.scope, token: p.token });
    else problems.push(`${file}:${i + 1}: expected ${p.expected}`);
  });
  return { tokens, problems };
}

export type AuthResult = 'ok' | 'unauthenticated' | 'forbidden';

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function allows(scope: TokenScope, need: Need): boolean {
  if (need === 'read') return scope === 'read' || scope === 'write';
  if (need === 'write') return scope === 'write';
  return scope === 'sidecar' || scope === 'write';
}

export class TokenSet {
  readonly #tokens: readonly { readonly digest: Buffer; readonly scope: TokenScope }[];

  constructor(tokens: readonly { scope: TokenScope; token: string }[]) {
    this.#tokens = tokens.map((t) => ({ digest: digest(t.token), scope: t.scope }));
  }

  get size(): number { return this.#tokens.length; }

  /** The scope of a token, or undefined when it is not known. */
  scopeOf(token: string): TokenScope | undefined {
    const d = digest(token);
    let found: TokenScope | undefined;
    for (const t of this.#tokens) {
      if (timingSafeEqual(t.digest, d) && found === undefined) found = t.scope;
    }
    return found;
  }

  /** Decide a request from its Authorization header. */
  check(authorization: string | undefined, need: Need): AuthResult {
    const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    const scope = m?.[1] === undefined ? undefined : this.scopeOf(m[1]);
    if (scope === undefined) return 'unauthenticated';
    return allows(scope, need) ? 'ok' : 'forbidden';
  }
}
