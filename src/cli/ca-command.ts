// `remora ca`: the built-in certificate authority (issue 11). One self-signed root per trust domain issues
// X.509-SVIDs in Istio's file layout; roots rotate with an overlap (old and new root both trusted until the old one is
// retired). Every command prints what it did and each certificate's expiry; keys are never printed.
// Flags only (no environment or INI file: the CA directory is named explicitly every time).
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { formatIssue, type ConfigIssue } from '../config/config-issue.js';
import { resolveOptions, type OptionSpec, type OptionSpecs, type OptionValues } from '../config/option-set.js';
import { path as pathParser, type Parsed, type ValueParser } from '../config/value-parsers.js';
import { formatDurationMs, parseDurationMs } from '../core/duration.js';
import { RemoraError, isSystemError } from '../core/errors.js';
import { checkTrustDomain, parseSpiffeId } from '../core/spiffe.js';
import { inspectSvid, issuerIn, splitPemCertificates, validityOf } from '../core/svid.js';
import type { CaStore as CaStoreType, RootCertificate } from '../pki/ca-store.js';
import { parseArgv } from './argv.js';

export interface CaCommandIo {
  /** Receives the command's output (stdout by default). */
  readonly out?: (text: string) => void;
  /** The clock (Date.now by default). */
  readonly now?: () => number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Istio's maximum workload certificate TTL (90 days). */
export const MAX_LEAF_TTL_MS = 90 * DAY_MS;
const MIN_LEAF_TTL_MS = 60_000;
const DEFAULT_LEAF_TTL_MS = 24 * HOUR_MS;
/** Istio's default self-signed root TTL (10 years). */
const DEFAULT_ROOT_TTL_MS = 87_600 * HOUR_MS;
const MIN_ROOT_TTL_MS = HOUR_MS;
const MAX_ROOT_TTL_MS = 876_000 * HOUR_MS;
const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// ---- flags --------------------------------------------------------------------------------------------------------

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** A duration with a unit (a bare number would be milliseconds: never what a TTL means). */
function ttl(min: number, max: number, maxText: string): ValueParser<number> {
  return (text) => {
    const expected = `a duration with a unit like 24h or 90m, from ${formatDurationMs(min)} to ${maxText}`;
    if (!/^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h)\s*$/.test(text)) return bad(expected);
    const ms = parseDurationMs(text);
    return ms !== undefined && ms >= min && ms <= max ? ok(ms) : bad(expected);
  };
}

const trustDomainParser: ValueParser<string> = (text) => {
  const why = checkTrustDomain(text);
  return why === undefined ? ok(text) : bad(why);
};

const spiffeIdParser: ValueParser<string> = (text) => {
  const p = parseSpiffeId(text, true);
  return p.ok ? ok(p.value.id) : bad(p.expected);
};

const serialParser: ValueParser<string> = (text) =>
  /^[0-9A-Fa-f]+(?::[0-9A-Fa-f]+)*$/.test(text.trim()) ? ok(text.trim()) : bad('a root serial number in hex, as "remora ca show" prints it');

const switchParser: ValueParser<boolean> = (text) =>
  text === 'true' ? ok(true) : text === 'false' ? ok(false) : bad('no value (a switch)');

function spec<T>(flag: string, valueName: string, help: string, parse: ValueParser<T>, defaultValue: T, defaultText: string): OptionSpec<T> {
  return { key: flag.replaceAll('-', '_'), flag, env: '', help, valueName, defaultValue, defaultText, parse };
}

const dirSpec = spec('dir', 'DIR', 'the CA directory', pathParser, '', '');

const SUBCOMMANDS = {
  init: {
    summary: 'create a CA: a new self-signed root and its key in --dir',
    usage: 'remora ca init --dir DIR [--trust-domain cluster.local] [--ttl 87600h]',
    about: `Creates DIR (0700) if missing and writes DIR/root-cert.pem, DIR/root-key.pem (0600) and
DIR/ca.json. The root is ECDSA P-256, valid for --ttl, with the URI SAN spiffe://TRUST-DOMAIN.
Refuses, writing nothing, when DIR already holds a CA.`,
    specs: {
      dir: dirSpec,
      trustDomain: spec('trust-domain', 'NAME', 'the SPIFFE trust domain', trustDomainParser, DEFAULT_TRUST_DOMAIN, DEFAULT_TRUST_DOMAIN),
      ttl: spec('ttl', 'DURATION', 'root validity', ttl(MIN_ROOT_TTL_MS, MAX_ROOT_TTL_MS, '876000h'), DEFAULT_ROOT_TTL_MS, '87600h (10 years)'),
    },
    required: ['dir'],
  },
  issue: {
    summary: 'issue a workload certificate (X.509-SVID) into --out',
    usage: 'remora ca issue --dir DIR --spiffe-id spiffe://TD/ns/NS/sa/SA --out OUTDIR [--ttl 24h]',
    about: `Writes OUTDIR/root-cert.pem (the trust bundle: the active root and the previous roots still
trusted), then OUTDIR/key.pem (0600, a fresh ECDSA P-256 key) and OUTDIR/cert-chain.pem (the
leaf), key before certificate, each replaced atomically. Re-issuing into OUTDIR replaces them.
NotAfter is cut to the root's expiry when --ttl reaches past it.`,
    specs: {
      dir: dirSpec,
      spiffeId: spec('spiffe-id', 'ID', "the workload's SPIFFE ID, in the CA's trust domain", spiffeIdParser, '', ''),
      out: spec('out', 'OUTDIR', 'the directory to write cert-chain.pem, key.pem and root-cert.pem to', pathParser, '', ''),
      ttl: spec('ttl', 'DURATION', 'certificate validity, at most 2160h (90 days)', ttl(MIN_LEAF_TTL_MS, MAX_LEAF_TTL_MS, '2160h (90 days)'), DEFAULT_LEAF_TTL_MS, '24h'),
    },
    required: ['dir', 'spiffe-id', 'out'],
  },
  'rotate-root': {
    summary: 'replace the active root; the previous one stays trusted until retired',
    usage: 'remora ca rotate-root --dir DIR [--ttl 87600h]',
    about: `Creates a new root (new key) as DIR/root-cert.pem. The previous root moves to
DIR/roots/SERIAL.pem and stays in the trust bundle; its key is deleted, so it never signs again.
Then, in this order: distribute the new bundle to every pod ("remora ca bundle"), re-issue every
leaf ("remora ca issue"), and retire the previous root ("remora ca retire-root").`,
    specs: {
      dir: dirSpec,
      ttl: spec('ttl', 'DURATION', 'validity of the new root', ttl(MIN_ROOT_TTL_MS, MAX_ROOT_TTL_MS, '876000h'), DEFAULT_ROOT_TTL_MS, '87600h (10 years)'),
    },
    required: ['dir'],
  },
  'retire-root': {
    summary: 'remove previous roots from the trust bundle',
    usage: 'remora ca retire-root --dir DIR (--serial SERIAL | --all-previous)',
    about: `Deletes a previous root (DIR/roots/SERIAL.pem) so that it leaves the trust bundle; leaves it
signed stop verifying wherever the new bundle arrives. The active root cannot be retired.`,
    specs: {
      dir: dirSpec,
      serial: spec('serial', 'SERIAL', 'the serial of the previous root to retire (see "remora ca show")', serialParser, '', ''),
      allPrevious: { ...spec('all-previous', '', 'retire every previous root', switchParser, false, ''), isSwitch: true },
    },
    required: ['dir'],
  },
  bundle: {
    summary: 'write the current trust bundle (every trusted root) to a file',
    usage: 'remora ca bundle --dir DIR --out FILE',
    about: `Writes the trust bundle (the active root, then the previous roots still trusted) to FILE,
atomically, mode 0644: push it to every pod before issuing leaves from a new root.`,
    specs: {
      dir: dirSpec,
      out: spec('out', 'FILE', 'the file to write', pathParser, '', ''),
    },
    required: ['dir', 'out'],
  },
  show: {
    summary: "print the CA's roots, or a workload certificate",
    usage: 'remora ca show --dir DIR | --cert FILE [--dir DIR]',
    about: `With --dir: the trust domain and every root (active, previous) with its serial, SHA-256
fingerprint, validity and days left. With --cert: the SPIFFE ID, serial and validity of a
cert-chain.pem, and which root signed it (the roots of --dir, else a root-cert.pem next to FILE).`,
    specs: {
      dir: { ...dirSpec, help: 'the CA directory' },
      cert: spec('cert', 'FILE', "a workload's cert-chain.pem", pathParser, '', ''),
    },
    required: [],
  },
} as const satisfies Readonly<Record<string, { summary: string; usage: string; about: string; specs: OptionSpecs; required: readonly string[] }>>;

type Subcommand = keyof typeof SUBCOMMANDS;

const HELP = `Usage: remora ca <command> [flags]

The built-in certificate authority: a self-signed root per trust domain that issues
X.509-SVIDs (SPIFFE workload certificates) in Istio's layout (cert-chain.pem, key.pem,
root-cert.pem). Roots rotate with an overlap: old and new root are both trusted until
the old one is retired.

Commands:
${Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(13)}${c.summary}`).join('\n')}

Run "remora ca <command> --help" for its flags.
`;

function subcommandHelp(name: Subcommand): string {
  const c = SUBCOMMANDS[name];
  const rows = Object.values(c.specs as OptionSpecs).map((s) => {
    const left = s.isSwitch === true ? `--${s.flag}` : `--${s.flag} ${s.valueName ?? 'VALUE'}`;
    const req = (c.required as readonly string[]).includes(s.flag) ? ' (required)' : '';
    const def = s.defaultText === '' ? '' : ` (default: ${s.defaultText})`;
    return `  ${left.padEnd(26)}${s.help}${req}${def}`;
  });
  return `Usage: ${c.usage}\n\n${c.about}\n\nFlags:\n${rows.join('\n')}\n`;
}

function usageError(message: string, issues: readonly ConfigIssue[] = []): RemoraError {
  const lines = issues.map((i) => `\n  ${formatIssue(i)}`).join('');
  return new RemoraError('REMORA_ERR_USAGE', `${message}${lines}`, { details: { issues } });
}

interface ParsedFlags<S extends OptionSpecs> {
  readonly values: OptionValues<S>;
  /** The flags given on the command line. */
  readonly given: ReadonlySet<string>;
}

/** Flags of a subcommand, validated; REMORA_ERR_USAGE listing every problem. (--help is handled before.) */
function parseFlags<S extends OptionSpecs>(name: Subcommand, argv: readonly string[], specs: S, required: readonly string[]): ParsedFlags<S> {
  const parsed = parseArgv(argv, specs);
  const resolved = resolveOptions(specs, { flags: parsed.flags, env: {} });
  const issues = [...parsed.issues, ...resolved.issues];
  for (const flag of required) {
    if (!parsed.flags.has(flag) && !issues.some((i) => i.key === `--${flag}`)) {
      const s = Object.values(specs).find((x) => x.flag === flag);
      issues.push({ source: 'command line', key: `--${flag}`, expected: `${s?.valueName ?? 'a value'} (required)` });
    }
  }
  if (issues.length > 0) throw usageError(`invalid command line for "ca ${name}" (see "remora ca ${name} --help"):`, issues);
  return { values: resolved.values, given: new Set(parsed.flags.keys()) };
}

// ---- output -------------------------------------------------------------------------------------------------------

/** 2025-12-04T16:00:00Z (no milliseconds). */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "in 24h", "in 3650 days", "expired 2h ago". */
export function timeLeft(notAfter: number, now: number): string {
  const left = notAfter - now;
  const human = (ms: number): string => {
    const minutes = Math.round(ms / 60_000);
    if (minutes < 60) return `${minutes}m`;
    if (minutes < 48 * 60) return minutes % 60 === 0 ? `${minutes / 60}h` : `${Math.floor(minutes / 60)}h${minutes % 60}m`;
    return `${Math.floor(minutes / 1440)} days`;
  };
  return left > 0 ? `in ${human(left)}` : `expired ${human(-left)} ago`;
}

/** "3650 days left", "expired 2 days ago". */
function daysLeft(notAfter: number, now: number): string {
  // Certificates hold whole seconds: round to the minute first, so a 10-year root reads 3650 days, not 3649.
  const days = Math.floor(Math.round(Math.abs(notAfter - now) / 60_000) / 1440);
  return notAfter > now ? `${days} day${days === 1 ? '' : 's'} left` : `expired ${days} day${days === 1 ? '' : 's'} ago`;
}

function expiry(notAfter: number, now: number): string {
  return `expires ${isoTime(notAfter)}, ${timeLeft(notAfter, now)}`;
}

function rootLine(r: RootCertificate, now: number): string {
  return `root ${r.serial} (${r.active ? 'active' : 'previous'}, ${expiry(r.notAfter, now)})`;
}

// ---- commands -----------------------------------------------------------------------------------------------------

interface Context {
  readonly out: (line: string) => void;
  readonly now: number;
}

async function loadStore(): Promise<typeof import('../pki/ca-store.js')> {
  return import('../pki/ca-store.js');
}

function caError(message: string): RemoraError {
  return new RemoraError('REMORA_ERR_CA', message);
}

function noteExpiredPrevious(store: CaStoreType, ctx: Context): void {
  for (const r of store.previousRoots) {
    if (r.notAfter <= ctx.now) {
      ctx.out(`note: previous root ${r.serial} expired at ${isoTime(r.notAfter)} and is still in the bundle; retire it: remora ca retire-root --dir ${store.dir} --serial ${r.serial}`);
    }
  }
}

async function caInit(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS.init;
  const { values } = parseFlags('init', argv, c.specs, c.required);
  const { CaStore } = await loadStore();
  const dir = resolve(values.dir);
  const store = await CaStore.init(dir, { trustDomain: values.trustDomain, ttlMs: values.ttl, now: ctx.now });
  const root = store.activeRoot;
  ctx.out(`created CA for trust domain ${store.trustDomain} in ${dir}`);
  ctx.out(`  ${rootLine(root, ctx.now)}: ${root.subject}`);
  ctx.out(`  certificate ${root.file}`);
  ctx.out(`  key         ${join(dir, 'root-key.pem')} (mode 0600)`);
  ctx.out(`next: remora ca issue --dir ${dir} --spiffe-id spiffe://${store.trustDomain}/ns/NAMESPACE/sa/ACCOUNT --out OUTDIR`);
}

async function caIssue(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS.issue;
  const { values } = parseFlags('issue', argv, c.specs, c.required);
  const { CaStore } = await loadStore();
  const { writeIdentity } = await import('../pki/identity-writer.js');
  const dir = resolve(values.dir);
  const store = CaStore.open(dir);
  const id = parseSpiffeId(values.spiffeId);
  if (id.ok && id.value.trustDomain !== store.trustDomain) {
    throw usageError('invalid command line for "ca issue":', [{
      source: 'command line', key: '--spiffe-id', value: values.spiffeId,
      expected: `a SPIFFE ID in trust domain ${store.trustDomain} (the trust domain of the CA in ${dir}), like spiffe://${store.trustDomain}/ns/NAMESPACE/sa/ACCOUNT`,
    }]);
  }
  const root = store.activeRoot;
  if (root.notAfter <= ctx.now) {
    throw caError(`the active root ${root.serial} of ${dir} expired at ${isoTime(root.notAfter)}; nothing was issued (rotate it: remora ca rotate-root --dir ${dir})`);
  }
  const authority = await store.authority();
  const leaf = await authority.issue({ spiffeId: values.spiffeId, ttlMs: values.ttl, now: ctx.now });
  const outDir = resolve(values.out);
  const written = writeIdentity(outDir, { bundlePem: store.trustBundle(), certChainPem: leaf.certPem, keyPem: leaf.keyPem });
  ctx.out(`issued ${values.spiffeId} -> ${written.certChain} (${expiry(leaf.notAfter, ctx.now)})`);
  ctx.out(`  serial ${leaf.serial}, valid from ${isoTime(leaf.notBefore)}, signed by ${rootLine(root, ctx.now)}`);
  ctx.out(`  key ${written.key} (mode 0600, new ECDSA P-256 key)`);
  ctx.out(`  trust bundle ${written.bundle}: ${store.roots.length} root${store.roots.length === 1 ? '' : 's'}`);
  for (const r of store.roots) ctx.out(`    ${rootLine(r, ctx.now)}`);
  if (leaf.clamped) {
    ctx.out(`note: --ttl ${formatDurationMs(values.ttl)} reaches past the root's expiry: NotAfter clamped to ${isoTime(leaf.notAfter)} (the root's NotAfter); rotate the root: remora ca rotate-root --dir ${dir}`);
  }
  noteExpiredPrevious(store, ctx);
}

async function caRotateRoot(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS['rotate-root'];
  const { values } = parseFlags('rotate-root', argv, c.specs, c.required);
  const { CaStore } = await loadStore();
  const dir = resolve(values.dir);
  const { retired, store } = await CaStore.open(dir).rotate({ ttlMs: values.ttl, now: ctx.now });
  const root = store.activeRoot;
  ctx.out(`rotated the root of ${dir} (trust domain ${store.trustDomain})`);
  ctx.out(`  new ${rootLine(root, ctx.now)}: ${root.subject} -> ${root.file}`);
  ctx.out(`  ${rootLine(retired, ctx.now)} -> ${retired.file}: still trusted until retired; its key was deleted (it signs nothing more)`);
  ctx.out(`  trust bundle: ${store.roots.length} roots`);
  ctx.out('next, in this order:');
  ctx.out(`  1. push the new bundle to every pod: remora ca bundle --dir ${dir} --out FILE`);
  ctx.out(`  2. re-issue every workload certificate: remora ca issue --dir ${dir} --spiffe-id ID --out OUTDIR`);
  ctx.out(`  3. when no certificate of the previous root is in use: remora ca retire-root --dir ${dir} --serial ${retired.serial}`);
  noteExpiredPrevious(store, ctx);
}

async function caRetireRoot(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS['retire-root'];
  const { values, given } = parseFlags('retire-root', argv, c.specs, c.required);
  if (given.has('serial') === given.has('all-previous')) {
    throw usageError('ca retire-root: give either --serial SERIAL or --all-previous (see "remora ca retire-root --help")');
  }
  const { CaStore } = await loadStore();
  const dir = resolve(values.dir);
  const store = CaStore.open(dir);
  const retired = store.retire(values.allPrevious ? 'all' : [values.serial]);
  if (retired.length === 0) ctx.out(`no previous root to retire in ${dir}`);
  for (const r of retired) ctx.out(`retired ${rootLine(r, ctx.now)}: removed from the trust bundle (deleted ${r.file})`);
  const after = CaStore.open(dir);
  ctx.out(`  trust bundle: ${after.roots.length} root${after.roots.length === 1 ? '' : 's'}`);
  for (const r of after.roots) ctx.out(`    ${rootLine(r, ctx.now)}`);
  if (retired.length > 0) {
    ctx.out(`next: push the new bundle to every pod (remora ca bundle --dir ${dir} --out FILE, or re-issue); certificates of a retired root stop verifying where it arrives`);
  }
}

async function caBundle(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS.bundle;
  const { values } = parseFlags('bundle', argv, c.specs, c.required);
  const { CaStore } = await loadStore();
  const { writeFileAtomic } = await import('../pki/atomic-write.js');
  const dir = resolve(values.dir);
  const store = CaStore.open(dir);
  const file = resolve(values.out);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  writeFileAtomic(file, store.trustBundle(), { mode: 0o644 });
  ctx.out(`wrote the trust bundle of ${dir} (trust domain ${store.trustDomain}, ${store.roots.length} root${store.roots.length === 1 ? '' : 's'}) -> ${file}`);
  for (const r of store.roots) ctx.out(`  ${rootLine(r, ctx.now)}`);
  noteExpiredPrevious(store, ctx);
}

function showDir(store: CaStoreType, ctx: Context): void {
  ctx.out(`CA ${store.dir}`);
  ctx.out(`  trust domain ${store.trustDomain}${store.created === '' ? '' : ` (created ${store.created.replace(/\.\d{3}Z$/, 'Z')})`}`);
  for (const r of store.roots) {
    ctx.out(`  ${r.active ? 'active' : 'previous'} root ${r.serial}`);
    ctx.out(`    subject     ${r.subject}`);
    ctx.out(`    sha256      ${r.sha256}`);
    ctx.out(`    not before  ${isoTime(r.notBefore)}`);
    ctx.out(`    not after   ${isoTime(r.notAfter)} (${daysLeft(r.notAfter, ctx.now)})`);
    ctx.out(`    file        ${r.file}`);
  }
  if (store.previousRoots.length > 0) {
    ctx.out(`  trust bundle: ${store.roots.length} roots (rotation overlap; retire previous roots with remora ca retire-root)`);
  }
}

function showCert(file: string, store: CaStoreType | undefined, ctx: Context): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw caError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const pems = splitPemCertificates(text);
  const first = pems[0];
  if (first === undefined) throw caError(`${file} holds no PEM certificate`);
  const cert = new X509Certificate(first);
  const svid = inspectSvid(cert);
  if (!svid.ok) throw caError(`${file} is not an X.509-SVID: expected ${svid.expected}`);
  const v = svid.value;
  ctx.out(`${file}: ${v.spiffeId}`);
  ctx.out(`  serial      ${v.serial.toLowerCase()}`);
  ctx.out(`  sha256      ${cert.fingerprint256}`);
  ctx.out(`  not before  ${isoTime(v.notBefore)}`);
  ctx.out(`  not after   ${isoTime(v.notAfter)} (${timeLeft(v.notAfter, ctx.now)})`);
  ctx.out(`  chain       ${pems.length} certificate${pems.length === 1 ? '' : 's'}`);
  let roots: { source: string; certs: { cert: X509Certificate; label: string }[] } | undefined;
  if (store !== undefined) {
    roots = { source: store.dir, certs: store.roots.map((r) => ({ cert: new X509Certificate(r.pem), label: `${r.active ? 'active' : 'previous'} root ${r.serial}` })) };
  } else {
    const bundle = join(dirname(file), 'root-cert.pem');
    if (existsSync(bundle)) {
      roots = {
        source: bundle,
        certs: splitPemCertificates(readFileSync(bundle, 'utf8')).map((p) => {
          const c = new X509Certificate(p);
          return { cert: c, label: `root ${c.serialNumber.toLowerCase().replace(/^0+(?=.)/, '')}` };
        }),
      };
    }
  }
  if (roots !== undefined) {
    const issuer = issuerIn(cert, roots.certs.map((r) => r.cert));
    const found = roots.certs.find((r) => r.cert === issuer);
    ctx.out(found === undefined
      ? `  signed by   none of the ${roots.certs.length} root(s) of ${roots.source}`
      : `  signed by   ${found.label} of ${roots.source} (root ${expiry(validityOf(found.cert).notAfter, ctx.now)})`);
  }
}

async function caShow(argv: readonly string[], ctx: Context): Promise<void> {
  const c = SUBCOMMANDS.show;
  const { values, given } = parseFlags('show', argv, c.specs, c.required);
  if (!given.has('dir') && !given.has('cert')) throw usageError('ca show: give --dir DIR or --cert FILE (see "remora ca show --help")');
  const { CaStore } = await loadStore();
  const store = given.has('dir') ? CaStore.open(resolve(values.dir)) : undefined;
  if (given.has('cert')) showCert(resolve(values.cert), store, ctx);
  else if (store !== undefined) showDir(store, ctx);
}

const RUN: Readonly<Record<Subcommand, (argv: readonly string[], ctx: Context) => Promise<void>>> = {
  init: caInit,
  issue: caIssue,
  'rotate-root': caRotateRoot,
  'retire-root': caRetireRoot,
  bundle: caBundle,
  show: caShow,
};

function isSubcommand(name: string): name is Subcommand {
  return Object.hasOwn(SUBCOMMANDS, name);
}

/** `remora ca ARGV`: returns the exit code (0); failures throw RemoraError (REMORA_ERR_USAGE, REMORA_ERR_CA). */
export async function runCaCommand(argv: readonly string[], io: CaCommandIo = {}): Promise<number> {
  const write = io.out ?? ((text: string) => { process.stdout.write(text); });
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    write(HELP);
    if (name === undefined) throw usageError('missing command (init, issue, rotate-root, retire-root, bundle, show)');
    return 0;
  }
  if (!isSubcommand(name)) {
    throw usageError(`unknown command "ca ${name}" (one of ${Object.keys(SUBCOMMANDS).join(', ')}; see "remora ca --help")`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    write(subcommandHelp(name));
    return 0;
  }
  const ctx: Context = { out: (line) => write(`${line}\n`), now: (io.now ?? Date.now)() };
  try {
    await RUN[name](rest, ctx);
  } catch (err) {
    // A file that cannot be read or written (EACCES, ENOSPC, ENOTDIR...) is a failure of the command, not a bug.
    const fsError = err instanceof Error && !(err instanceof RemoraError) && (isSystemError(err) || typeof (err as { path?: unknown }).path === 'string');
    if (fsError) throw new RemoraError('REMORA_ERR_CA', `ca ${name}: ${err.message}`, { cause: err });
    throw err;
  }
  return 0;
}
