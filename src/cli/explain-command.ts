// `remora explain`: the whole path a connection (or an HTTP request) to a destination would take, and why. Two
// halves, merged here:
//   rules  the nat rules in force in this network namespace with their counters (iptables-save -c, or --rules-file),
//          walked by src/interceptor/rule-trace.ts: which rule captures the connection (to which listener port), or
//          which rule lets it go and why;
//   proxy  the running sidecar's own view, over its admin API (GET /debug/explain on --admin, default
//          127.0.0.1:15000): listener, protocol decision, service, mTLS, authorization, route, and the endpoint its
//          balancer would pick now with its health (a peek: no balancer state moves).
// Human-readable by default, --json for the structured result. Exit codes: 0 explained; 1 a half could not be read
// (printed anyway, with the reason); 2 bad flags.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { formatIssue, type ConfigIssue } from '../config/config-issue.js';
import { cidrContains, formatHostPort, parseHostPort, type HostPort } from '../core/addr.js';
import { RemoraError } from '../core/errors.js';
import { readLiveNat } from '../interceptor/live-rules.js';
import { parseCountedNat } from '../interceptor/rule-readback.js';
import { traceRules, type RuleTrace, type TracedPacket } from '../interceptor/rule-trace.js';
import { EXPLAIN_PARAMS, explainQueryString, parseExplainQuery, type ExplainQuery } from '../proxy/explain/explain-query.js';
import type { ProxyExplanation } from '../proxy/explain/explain-planner.js';
import { collectArgv } from './argv.js';
import { renderExplanation } from './explain-render.js';

const HELP = `Usage: remora explain --dst IP:PORT [flags]

Prints the path a connection to IP:PORT (or an HTTP request, with --host/--path/--method/--header)
would take and why: the nat rule that captures it (with its packet counter) or lets it go, the
listener, the protocol decision, the service, mTLS, the authorization policies, the route, and the
endpoint the sidecar's balancer would pick now with its health. Run it in the pod's network namespace
(reading the rules needs root or CAP_NET_ADMIN); the sidecar must be running there.

Flags:
  --dst IP:PORT             the destination the app dials (outbound), or the pod address a client
                            dials (inbound); IPv6 as [ADDR]:PORT (required)
  --direction DIR           outbound (default: a process of the pod connects) or inbound (a client
                            outside the pod connects to it)
  --host NAME               the Host header / TLS SNI (selects a service by hostname, routes by host)
  --path PATH               the request path, a query may follow "?"
  --method METHOD           the request method (default GET when an HTTP request is described)
  --header "NAME: VALUE"    a request header; repeatable
  --uid ID, --gid ID        the connecting process's uid/gid (outbound rules; default: an app's,
                            which no owner rule names; --gid defaults to --uid)
  --src IP                  the client's address (inbound: authorization from_cidrs)
  --identity SPIFFE-ID      the client's identity as mesh mTLS would verify it (inbound authorization)
  --admin HOST:PORT         the sidecar's admin address (default 127.0.0.1:15000)
  --rules-file FILE         read "iptables-save -c" output from FILE instead of the live rules
  --json                    print the structured result (JSON)
`;

const VALUE_FLAGS = new Set<string>([...EXPLAIN_PARAMS, 'admin', 'rules-file']);
const SWITCHES = new Set(['json', 'help']);

export interface ExplainReport {
  readonly query: ExplainQuery;
  readonly rules:
    | ({ readonly ok: true; readonly source: string; readonly packet: TracedPacket } & RuleTrace)
    | { readonly ok: false; readonly error: string };
  /** Whether the connection reaches the proxy: true (captured), false (not), undefined (the rules are unknown). */
  readonly captured: boolean | undefined;
  /** The listener the capturing rule redirects to ('other': a port no listener of the sidecar has). */
  readonly listener: { readonly name: 'outbound' | 'inbound' | 'other' | 'unknown'; readonly port: number } | undefined;
  readonly proxy: ({ readonly ok: true } & ProxyExplanation) | { readonly ok: false; readonly error: string };
  readonly notes: readonly string[];
}

interface Flags {
  readonly params: Map<string, string[]>;
  readonly admin: HostPort;
  readonly rulesFile: string | undefined;
  readonly json: boolean;
  readonly help: boolean;
  /** Problems with the flags themselves (reported with the query's, all at once). */
  readonly issues: readonly ConfigIssue[];
}

function usage(issues: readonly ConfigIssue[]): RemoraError {
  return new RemoraError('REMORA_ERR_USAGE',
    `invalid command line for "explain" (see "remora explain --help"):${issues.map((i) => `\n  ${formatIssue(i)}`).join('')}`,
    { details: { issues } });
}

export function parseExplainFlags(argv: readonly string[]): Flags {
  const collected = collectArgv(argv, (name) => (SWITCHES.has(name) ? 'switch' : VALUE_FLAGS.has(name) ? 'value' : undefined), (name) => name === 'header');
  const { values } = collected;
  const issues = [...collected.issues];
  for (const name of SWITCHES) {
    for (const v of values.get(name) ?? []) {
      if (v !== 'true') issues.push({ source: 'command line', key: `--${name}`, value: v, expected: 'no value (a switch)' });
    }
  }
  const json = values.has('json');
  const help = collected.help || values.has('help');
  values.delete('json');
  values.delete('help');
  const adminText = values.get('admin');
  const admin = adminText === undefined ? { host: '127.0.0.1', port: 15000 } : parseHostPort(adminText[0] ?? '');
  if (admin === undefined) issues.push({ source: 'command line', key: '--admin', value: adminText?.[0] ?? '', expected: 'HOST:PORT of the admin listener ([IPv6]:PORT)' });
  const rulesFile = values.get('rules-file')?.[0];
  values.delete('admin');
  values.delete('rules-file');
  return { params: values, admin: admin ?? { host: '127.0.0.1', port: 15000 }, rulesFile, json, help, issues };
}

/** Whether `address` is this namespace's own (so a connection to it leaves by lo). */
function isLocalAddress(address: string): boolean {
  if (cidrContains('127.0.0.0/8', address) === true || address === '::1') return true;
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address === address));
}

function getJson(admin: HostPort, path: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: admin.host, port: admin.port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          reject(new Error(`GET ${path} answered ${res.statusCode ?? '?'} with a body that is not JSON (an older remora proxy?)`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => { req.destroy(new Error(`no answer within ${timeoutMs} ms`)); });
    req.on('error', reject);
    req.end();
  });
}

async function askProxy(admin: HostPort, q: ExplainQuery): Promise<ExplainReport['proxy']> {
  const where = `http://${formatHostPort(admin.host, admin.port)}/debug/explain`;
  try {
    const r = await getJson(admin, `/debug/explain?${explainQueryString(q)}`, 5_000);
    if (r.status === 200) return { ok: true, ...(r.body as ProxyExplanation) };
    const message = (r.body as { message?: unknown }).message;
    return { ok: false, error: `${where} answered ${r.status}${typeof message === 'string' ? `: ${message}` : ''}` };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { ok: false, error: `cannot reach the sidecar's admin API at ${where} (${typeof code === 'string' ? code : (err as Error).message}); is remora proxy running in this network namespace?` };
  }
}

async function readRules(q: ExplainQuery, rulesFile: string | undefined): Promise<ExplainReport['rules']> {
  const packet: TracedPacket = {
    direction: q.direction, family: q.dst.family, destination: q.dst.address, port: q.dst.port, source: q.src,
    uid: q.uid, gid: q.gid ?? q.uid,
    outInterface: q.direction === 'outbound' && isLocalAddress(q.dst.address) ? 'lo' : undefined,
  };
  if (rulesFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(rulesFile, 'utf8');
    } catch (err) {
      return { ok: false, error: `cannot read ${rulesFile}: ${(err as { code?: string }).code ?? String(err)}` };
    }
    const table = parseCountedNat(text);
    if (table === undefined) return { ok: false, error: `${rulesFile} has no *nat table (expected "iptables-save -c" output)` };
    return { ok: true, source: rulesFile, packet, ...traceRules(table, packet) };
  }
  const live = await readLiveNat(q.dst.family);
  if (!live.ok) return { ok: false, error: live.error };
  return { ok: true, source: live.command, packet, ...traceRules(live.table, packet) };
}

/** Merge the halves: whether the proxy is on the path at all, and through which listener. */
export function mergeExplanation(q: ExplainQuery, rules: ExplainReport['rules'], proxy: ExplainReport['proxy']): ExplainReport {
  const notes: string[] = [];
  let captured: boolean | undefined;
  let listener: ExplainReport['listener'];
  if (rules.ok) {
    const v = rules.verdict;
    captured = v.kind === 'captured' ? true : v.kind === 'not-captured' ? false : undefined;
    if (v.kind === 'captured') {
      const ports = proxy.ok ? proxy.listeners : undefined;
      const name = ports === undefined ? 'unknown' : v.port === ports.outbound ? 'outbound' : v.port === ports.inbound ? 'inbound' : 'other';
      listener = { name, port: v.port };
      if (ports !== undefined && name === 'other') notes.push(`the rules redirect to port ${v.port}, where the sidecar has no listener (outbound ${ports.outbound}, inbound ${ports.inbound}): the connection would be refused`);
      if ((name === 'outbound' || name === 'inbound') && name !== q.direction) {
        notes.push(`the rules send this ${q.direction} connection to the ${name} listener (the proxy calling its own pod through a service address): see --direction ${name}`);
      }
    } else if (v.kind === 'not-captured') {
      notes.push(`not captured: the connection goes straight to ${formatHostPort(q.dst.address, q.dst.port)} without the proxy; what the proxy would do is shown for reference only`);
    }
  }
  return { query: q, rules, captured, listener, proxy, notes };
}

export async function runExplainCommand(
  argv: readonly string[],
  out: (text: string) => void = (t) => { process.stdout.write(t); },
  err: (text: string) => void = (t) => { process.stderr.write(t); },
): Promise<number> {
  const flags = parseExplainFlags(argv);
  if (flags.help) {
    out(HELP);
    return 0;
  }
  const parsed = parseExplainQuery(flags.params, 'command line', (name) => `--${name}`);
  if (!parsed.ok || flags.issues.length > 0) throw usage([...flags.issues, ...(parsed.ok ? [] : parsed.issues)]);
  const q = parsed.query;
  const [rules, proxy] = await Promise.all([readRules(q, flags.rulesFile), askProxy(flags.admin, q)]);
  const report = mergeExplanation(q, rules, proxy);
  out(flags.json ? `${JSON.stringify(report, null, 2)}\n` : renderExplanation(report));
  if (!proxy.ok) {
    err(`remora explain: REMORA_ERR_ADMIN_REQUEST: ${proxy.error}\n`);
    return 1;
  }
  if (!rules.ok) {
    err(`remora explain: REMORA_ERR_RULES_READ: ${rules.error}\n`);
    return 1;
  }
  return 0;
}
