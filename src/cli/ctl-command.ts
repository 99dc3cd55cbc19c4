// `remora ctl --server URL --token TOKEN --ca-file FILE <verb>`: the control plane's CLI (docs/control-plane.md#cli-remora-ctl).
// Verbs: get [KIND [NAME]] [-o json], apply -f FILE [--dry-run], diff -f FILE, delete KIND NAME,
// set-weights ROUTE BACKEND=W ..., sidecars, stat [-w WINDOW], explain KIND. Only the REST API is used.
// Exit codes: 0 done (diff: no difference), 1 refused by the server, unreachable, or (diff) a difference, 2 usage or a
// bad file. Every refusal prints the object, the field and what was expected.
import { readFileSync } from 'node:fs';
import { AUTHORIZATION_KEYS } from '../config/authorization-config.js';
import { formatIssue } from '../config/config-issue.js';
import { ROUTE_KEYS } from '../config/route-config.js';
import { REGISTRY_KEYS, SERVICE_KEYS } from '../config/service-registry.js';
import { TRAFFIC_POLICY_KEYS } from '../config/traffic-policy-config.js';
import { RemoraError } from '../core/errors.js';
import { ControlClient, ControlRefusal } from '../control/control-client.js';
import { KINDS, MESH_KEYS, OBJECT_KINDS, formatObjectIssue, kindOfSegment, objectKey, objectsOfIni, type ControlObject, type ObjectKind } from '../control/control-objects.js';
import { isMetricWindow, type MetricsView } from '../control/metrics-aggregator.js';
import type { SidecarEntry } from '../control/control-api.js';
import type { EndpointView, PolicyView, RouteSplitView } from '../control/status-aggregator.js';
import { formatConflict, sameSpec } from '../control/state-batch.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './main.js';
import { renderStat } from './stat-render.js';
import { expiresCell, readyCell, renderEndpoints, renderPolicies, renderSplit } from './status-render.js';

const HELP = `Usage: remora ctl --server https://HOST:15012 --token TOKEN --ca-file FILE <verb> [args]

Verbs:
  get [KIND [NAME]] [-o json]     list objects (all kinds, one kind, or one object)
  apply -f FILE [--dry-run]       create or replace the objects of an INI file (the static config's sections), all at once
  diff -f FILE                    what apply would change; exit 1 when something would
  delete KIND NAME                delete an object (at the version just read)
  set-weights ROUTE BACKEND=W ... set the weights of every backend of a route (canary, blue-green)
  sidecars                        the subscribed sidecars: version sent, applied, last NACK, ready, certificate expiry
  endpoints [SERVICE] [-o json]   endpoints as the sidecars see them: healthy, ejected, ejections, active connections
                                  (also: get endpoints [SERVICE])
  stat [-w 1m|5m|15m] [-o json]   golden metrics per service: success rate, RPS, p50/p95/p99 latency, TCP connections
  stat --policies [-w ...]        decisions per authorization policy: allowed, denied, audited, would-deny
  stat --routes [-w ...]          the live traffic split: requests per route backend, with weights and shares
  explain KIND                    the keys of a kind

Kinds: ${OBJECT_KINDS.join(', ')} (plurals accepted).
Flags may come from the environment: REMORA_CONTROL_URL, REMORA_CONTROL_TOKEN, REMORA_CONTROL_CA_FILE.
`;

export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const defaultIo: CtlIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

class UsageError extends Error {}

interface Parsed {
  readonly global: Map<string, string>;
  readonly verb: string | undefined;
  readonly args: string[];
  readonly local: Map<string, string>;
}

const GLOBAL_FLAGS = new Set(['server', 'token', 'ca-file']);
const LOCAL_VALUE_FLAGS = new Set(['-f', '--file', '-o', '--output', '-w', '--window']);
const LOCAL_SWITCHES = new Set(['--dry-run', '--policies', '--routes']);

function parse(argv: readonly string[]): Parsed {
  const global = new Map<string, string>();
  const local = new Map<string, string>();
  const args: string[] = [];
  let verb: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a);
    if (m !== null && GLOBAL_FLAGS.has(m[1] ?? '')) {
      const v = m[2] ?? argv[++i];
      if (v === undefined) throw new UsageError(`--${m[1] ?? ''}: expected a value`);
      global.set(m[1] ?? '', v);
    } else if (LOCAL_VALUE_FLAGS.has(a.split('=')[0] ?? '')) {
      const [flag = '', inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag}: expected a value`);
      local.set(flag === '--file' ? '-f' : flag === '--output' ? '-o' : flag === '--window' ? '-w' : flag, v);
    } else if (LOCAL_SWITCHES.has(a)) {
      local.set(a, 'true');
    } else if (a === '--help' || a === '-h') {
      local.set('--help', 'true');
    } else if (a.startsWith('-') && a !== '-') {
      throw new UsageError(`${a}: expected a known flag (see remora ctl --help)`);
    } else if (verb === undefined) {
      verb = a;
    } else {
      args.push(a);
    }
  }
  return { global, verb, args, local };
}

function kindArg(text: string | undefined): ObjectKind {
  const kind = text === undefined ? undefined : kindOfSegment(text);
  if (kind === undefined) throw new UsageError(`${text ?? '(none)'}: expected a kind: ${OBJECT_KINDS.join(', ')}`);
  return kind;
}

function summarize(spec: Readonly<Record<string, string>>, width = 70): string {
  const text = Object.entries(spec).map(([k, v]) => `${k}=${v}`).join('; ');
  return text.length > width ? `${text.slice(0, width - 3)}...` : text;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

function explain(kind: ObjectKind): string {
  const keys: Record<ObjectKind, readonly string[]> = {
    mesh: MESH_KEYS, registry: REGISTRY_KEYS, service: SERVICE_KEYS, 'traffic-policy': TRAFFIC_POLICY_KEYS, route: ROUTE_KEYS, authorization: AUTHORIZATION_KEYS,
  };
  const docs: Record<ObjectKind, string> = {
    mesh: 'docs/configuration.md', registry: 'docs/configuration-services.md', service: 'docs/configuration-services.md',
    'traffic-policy': 'docs/l7-policies.md', route: 'docs/l7-policies.md', authorization: 'docs/authorization.md',
  };
  const name = KINDS[kind].singleton ? ' (one per mesh, named "default")' : '';
  return `${kind}: the INI section [${KINDS[kind].section('NAME')}]${name}\nkeys: ${keys[kind].join(', ')}\nsee ${docs[kind]}\n`;
}

async function readState(client: ControlClient): Promise<{ revision: number; objects: ControlObject[] }> {
  return await client.call('GET', '/api/v1/state') as { revision: number; objects: ControlObject[] };
}

function objectPath(kind: ObjectKind, name: string): string {
  return `/api/v1/${KINDS[kind].plural}/${encodeURIComponent(name)}`;
}

/**
 * One object. GET /api/v1/routes/split is the live traffic split (docs/control-plane.md), so a route named "split"
 * is read from the list of routes instead.
 */
async function getObject(client: ControlClient, kind: ObjectKind, name: string): Promise<ControlObject> {
  if (kind !== 'route' || name !== 'split') return await client.call('GET', objectPath(kind, name)) as ControlObject;
  const list = await client.call('GET', `/api/v1/${KINDS.route.plural}`) as { items: ControlObject[] };
  const o = list.items.find((x) => x.name === name);
  if (o === undefined) throw new ControlRefusal(404, 'REMORA_ERR_CONTROL_REQUEST', `route ${name} does not exist`, [], []);
  return o;
}

async function run(p: Parsed, env: NodeJS.ProcessEnv, io: CtlIo): Promise<number> {
  if (p.local.has('--help') || p.verb === 'help') {
    io.out(HELP);
    return EXIT_OK;
  }
  if (p.verb === undefined) {
    io.err(`remora ctl: REMORA_ERR_USAGE: expected a verb\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (p.verb === 'explain') {
    io.out(explain(kindArg(p.args[0])));
    return EXIT_OK;
  }
  const server = p.global.get('server') ?? env.REMORA_CONTROL_URL;
  const token = p.global.get('token') ?? env.REMORA_CONTROL_TOKEN;
  const caFile = p.global.get('ca-file') ?? env.REMORA_CONTROL_CA_FILE;
  if (server === undefined || token === undefined || caFile === undefined) {
    throw new UsageError('expected --server URL, --token TOKEN and --ca-file FILE (or REMORA_CONTROL_URL, REMORA_CONTROL_TOKEN, REMORA_CONTROL_CA_FILE)');
  }
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new UsageError(`--ca-file ${caFile}: expected a readable PEM file (${(err as { code?: string }).code ?? 'EIO'})`);
  }
  const client = new ControlClient({ server, token, ca });
  const json = p.local.get('-o') === 'json';
  if (p.local.has('-o') && !json) throw new UsageError(`-o ${p.local.get('-o') ?? ''}: expected json (or no -o for tables)`);

  switch (p.verb) {
    case 'get': {
      if (p.args[0] === 'endpoints' || p.args[0] === 'endpoint') return await run({ ...p, verb: 'endpoints', args: p.args.slice(1) }, env, io);
      if (p.args.length > 2) throw new UsageError('get [KIND [NAME]]');
      if (p.args[1] !== undefined) {
        const o = await getObject(client, kindArg(p.args[0]), p.args[1]);
        if (json) io.out(`${JSON.stringify(o, null, 2)}\n`);
        else io.out(table([['KIND', 'NAME', 'VERSION', 'SPEC'], [o.kind, o.name, String(o.version), summarize(o.spec, 1000)]]));
        return EXIT_OK;
      }
      const state = await readState(client);
      const kind = p.args[0] === undefined ? undefined : kindArg(p.args[0]);
      const objects = state.objects.filter((o) => kind === undefined || o.kind === kind);
      if (json) io.out(`${JSON.stringify({ revision: state.revision, objects }, null, 2)}\n`);
      else if (objects.length === 0) io.out(`no objects (revision ${state.revision})\n`);
      else io.out(table([['KIND', 'NAME', 'VERSION', 'SPEC'], ...objects.map((o) => [o.kind, o.name, String(o.version), summarize(o.spec)])]));
      return EXIT_OK;
    }
    case 'apply':
    case 'diff': {
      const file = p.local.get('-f');
      if (file === undefined || p.args.length > 0) throw new UsageError(`${p.verb} -f FILE`);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new UsageError(`-f ${file}: expected a readable INI file (${(err as { code?: string }).code ?? 'EIO'})`);
      }
      const parsed = objectsOfIni(text, file);
      for (const s of parsed.skipped) io.err(`remora ctl: note: ${s.source}: ${s.key}: ${s.expected}\n`);
      if (parsed.issues.length > 0) {
        io.err(`remora ctl: REMORA_ERR_CONFIG_INVALID: ${file} (${parsed.issues.length} problem${parsed.issues.length === 1 ? '' : 's'}); nothing was sent:\n`);
        for (const i of parsed.issues) io.err(`  ${formatIssue(i)}\n`);
        return EXIT_USAGE;
      }
      const state = await readState(client);
      const current = new Map(state.objects.map((o) => [objectKey(o.kind, o.name), o]));
      const writes = parsed.objects.map((o) => ({ ...o, version: current.get(objectKey(o.kind, o.name))?.version ?? 0 }));
      const dryRun = p.verb === 'diff' || p.local.has('--dry-run');
      const result = await client.call('POST', `/api/v1/apply${dryRun ? '?dryRun=true' : ''}`, { writes }) as { revision: number; changes: { type: string; kind: string; name: string }[] };
      if (p.verb === 'diff') {
        let differences = 0;
        for (const o of parsed.objects) {
          const before = current.get(objectKey(o.kind, o.name));
          if (before === undefined) {
            differences++;
            io.out(`+ ${o.kind} ${o.name}\n`);
            for (const [k, v] of Object.entries(o.spec)) io.out(`+   ${k} = ${v}\n`);
            continue;
          }
          if (sameSpec(before.spec, o.spec)) continue;
          differences++;
          io.out(`~ ${o.kind} ${o.name} (version ${before.version})\n`);
          for (const k of new Set([...Object.keys(before.spec), ...Object.keys(o.spec)])) {
            const a = before.spec[k];
            const b = o.spec[k];
            if (a === b) continue;
            if (a !== undefined) io.out(`-   ${k} = ${a}\n`);
            if (b !== undefined) io.out(`+   ${k} = ${b}\n`);
          }
        }
        if (differences === 0) io.out('no differences\n');
        return differences === 0 ? EXIT_OK : EXIT_FAILURE;
      }
      const changed = new Set(result.changes.map((c) => `${c.kind}/${c.name}`));
      for (const o of parsed.objects) {
        const key = objectKey(o.kind, o.name);
        const verb = !changed.has(key) ? 'unchanged' : current.has(key) ? 'configured' : 'created';
        io.out(`${o.kind}/${o.name} ${verb}${dryRun && verb !== 'unchanged' ? ' (dry run)' : ''}\n`);
      }
      io.out(`revision ${result.revision}${dryRun ? ' (dry run: nothing stored)' : ''}\n`);
      return EXIT_OK;
    }
    case 'delete': {
      if (p.args.length !== 2) throw new UsageError('delete KIND NAME');
      const kind = kindArg(p.args[0]);
      const name = p.args[1] ?? '';
      const o = await getObject(client, kind, name);
      const r = await client.call('DELETE', `${objectPath(kind, name)}?version=${o.version}`) as { revision: number };
      io.out(`${kind}/${name} deleted (revision ${r.revision})\n`);
      return EXIT_OK;
    }
    case 'set-weights': {
      const [route, ...pairs] = p.args;
      if (route === undefined || pairs.length === 0) throw new UsageError('set-weights ROUTE BACKEND=WEIGHT ...');
      const weights: Record<string, number> = {};
      for (const pair of pairs) {
        const m = /^([^=\s]+)=(\d+)$/.exec(pair);
        if (m === null) throw new UsageError(`${pair}: expected BACKEND=WEIGHT (an integer 0-10000), e.g. web-v2=10`);
        weights[m[1] ?? ''] = Number(m[2]);
      }
      const o = await getObject(client, 'route', route);
      const r = await client.call('POST', `${objectPath('route', route)}/weights`, { weights, version: o.version }) as { revision: number; object?: ControlObject };
      io.out(`route/${route} weights ${pairs.join(' ')} (revision ${r.revision}; backends = ${r.object?.spec.backends ?? ''})\n`);
      return EXIT_OK;
    }
    case 'sidecars': {
      const r = await client.call('GET', '/api/v1/sidecars') as { revision: number; sidecars: SidecarEntry[] };
      if (json) io.out(`${JSON.stringify(r, null, 2)}\n`);
      else if (r.sidecars.length === 0) io.out(`no sidecars subscribed (revision ${r.revision})\n`);
      else {
        io.out(table([['NAME', 'IDENTITY', 'STATUS', 'CONNECTED', 'READY', 'CERT EXPIRES', 'SENT', 'APPLIED', 'LAST NACK'], ...r.sidecars.map((s) => [
          s.name, s.identity === '' ? '-' : s.identity, s.status, s.connected ? 'yes' : 'no', readyCell(s.ready), expiresCell(s.certificate),
          String(s.versionSent), String(s.versionApplied),
          s.lastNackError === undefined ? '' : `v${s.lastNackVersion ?? '?'}: ${s.lastNackError.replace(/\s+/g, ' ').slice(0, 120)}`,
        ])]));
      }
      return EXIT_OK;
    }
    case 'endpoints': {
      const service = p.args[0];
      if (p.args.length > 1) throw new UsageError('endpoints [SERVICE]: at most one service');
      const r = await client.call('GET', `/api/v1/endpoints${service === undefined ? '' : `?service=${encodeURIComponent(service)}`}`) as { endpoints: EndpointView[] };
      io.out(json ? `${JSON.stringify(r, null, 2)}\n` : renderEndpoints(r.endpoints, service));
      return EXIT_OK;
    }
    case 'stat': {
      const window = p.local.get('-w') ?? '1m';
      if (!isMetricWindow(window)) throw new UsageError(`-w ${window}: expected 1m, 5m or 15m`);
      if (p.local.has('--policies') && p.local.has('--routes')) throw new UsageError('stat: --policies or --routes, not both');
      if (p.local.has('--policies')) {
        const r = await client.call('GET', `/api/v1/policies/stats?window=${window}`) as { window: string; policies: PolicyView[] };
        io.out(json ? `${JSON.stringify(r, null, 2)}\n` : renderPolicies(r.window, r.policies));
        return EXIT_OK;
      }
      if (p.local.has('--routes')) {
        const r = await client.call('GET', `/api/v1/routes/split?window=${window}`) as { window: string; routes: RouteSplitView[] };
        io.out(json ? `${JSON.stringify(r, null, 2)}\n` : renderSplit(r.window, r.routes));
        return EXIT_OK;
      }
      const view = await client.call('GET', `/api/v1/metrics?window=${window}`) as MetricsView;
      io.out(json ? `${JSON.stringify(view, null, 2)}\n` : renderStat(view));
      return EXIT_OK;
    }
    default:
      throw new UsageError(`unknown verb "${p.verb}" (see remora ctl --help)`);
  }
}

export async function runCtlCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: CtlIo = defaultIo): Promise<number> {
  try {
    return await run(parse(argv), env, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`remora ctl: REMORA_ERR_USAGE: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof ControlRefusal) {
      io.err(`remora ctl: ${err.code}: ${err.message}\n`);
      for (const i of err.issues) io.err(`  ${formatObjectIssue(i)}\n`);
      for (const c of err.conflicts) io.err(`  ${formatConflict(c)}\n`);
      return EXIT_FAILURE;
    }
    if (err instanceof RemoraError) {
      io.err(`remora ctl: ${err.code}: ${err.message}\n`);
      return err.code === 'REMORA_ERR_USAGE' ? EXIT_USAGE : EXIT_FAILURE;
    }
    throw err;
  }
}
