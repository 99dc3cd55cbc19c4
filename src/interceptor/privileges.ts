// Whether this process may change the network namespace's netfilter rules: CAP_NET_ADMIN (and CAP_NET_RAW, which
// iptables-legacy needs for its raw socket) in the effective set, read from /proc/self/status. Pure parsing.

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

export interface Privileges {
  readonly uid: number | undefined;
  readonly netAdmin: boolean;
  readonly netRaw: boolean;
}

/** `statusText` is /proc/self/status; undefined (unreadable) means "assume root only". */
export function parsePrivileges(statusText: string | undefined, uid: number | undefined): Privileges {
  const m = statusText === undefined ? null : /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(statusText);
  if (m === null || m[1] === undefined) return { uid, netAdmin: uid === 0, netRaw: uid === 0 };
  const eff = BigInt(`0x${m[1]}`);
  const has = (cap: number): boolean => ((eff >> BigInt(cap)) & 1n) === 1n;
  return { uid, netAdmin: has(CAP_NET_ADMIN), netRaw: has(CAP_NET_RAW) };
}

/** Undefined when privileged enough for `backend`, else the reason. */
export function privilegeProblem(p: Privileges, backend: string): string | undefined {
  const who = p.uid === undefined ? 'this process' : `uid ${p.uid}`;
  if (!p.netAdmin) {
    return `${who} lacks CAP_NET_ADMIN: run remora init as root or with the NET_ADMIN and NET_RAW capabilities `
      + '(or use --dry-run, which needs no privileges)';
  }
  if (!p.netRaw && backend !== 'nft') {
    return `${who} lacks CAP_NET_RAW, which iptables-${backend} needs: add the NET_RAW capability`;
  }
  return undefined;
}
