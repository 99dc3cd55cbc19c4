// "Where the time goes": a V8 CPU profile (`node --cpu-prof`) of the proxy during a load, reduced to the share of
// samples per area (idle, garbage collection, remora's own JavaScript by layer, Node's JavaScript by module, native
// code) and the functions with the most self time. Pure: a parsed .cpuprofile in, a summary out.

export interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileArea {
  readonly area: string;
  /** Share of all samples, 0-1. */
  readonly share: number;
  /** Share of the busy (non-idle) samples, 0-1. */
  readonly busyShare: number;
}

export interface ProfileFunction {
  readonly name: string;
  readonly where: string;
  readonly area: string;
  /** Share of the busy samples, 0-1. */
  readonly busyShare: number;
}

export interface ProfileSummary {
  readonly durationS: number;
  readonly samples: number;
  /** Busy share of the profiled time (1 - idle). */
  readonly busy: number;
  readonly areas: readonly ProfileArea[];
  readonly top: readonly ProfileFunction[];
}

/** The area a function's self time is counted under. */
export function areaOf(frame: CpuProfileNode['callFrame']): string {
  const { functionName: fn, url } = frame;
  if (url === '') {
    if (fn === '(idle)') return 'idle (waiting in epoll)';
    if (fn === '(garbage collector)') return 'garbage collection';
    if (fn === '(program)') return 'V8/Node native, not attributed (program)';
    if (fn === '(root)') return 'root';
    return 'native builtins and bindings (writev, parsers, ...)';
  }
  const m = /\/dist\/src\/([a-z0-9-]+)\//.exec(url);
  if (m !== null) return `remora ${m[1]}/`;
  if (url.includes('/node_modules/pino') || url.includes('/node_modules/thread-stream') || url.includes('/node_modules/sonic-boom')) return 'logging (pino)';
  if (url.includes('/node_modules/')) return 'other dependencies';
  const n = /^node:(?:internal\/)?([a-z_0-9]+)/.exec(url);
  if (n !== null) {
    const mod = n[1] ?? '';
    if (mod.startsWith('_http') || mod === 'http' || mod === 'http2') return 'Node http/http2 (JavaScript)';
    if (mod === 'net' || mod === 'stream_base_commons' || mod === 'streams' || mod === 'stream') return 'Node net/streams (JavaScript)';
    if (mod === 'timers') return 'Node timers';
    if (mod === 'process') return 'Node process/ticks';
    return 'Node other (JavaScript)';
  }
  return 'other JavaScript';
}

function shortWhere(frame: CpuProfileNode['callFrame']): string {
  if (frame.url === '') return '(native)';
  const url = frame.url.replace(/^file:\/\/.*\/dist\//, '').replace(/^node:/, 'node:');
  return `${url}:${frame.lineNumber + 1}`;
}

/** Reduce a profile: self samples per area and per function (busy = everything but idle). */
export function summarizeCpuProfile(p: CpuProfile, topN = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (p.samples !== undefined && p.samples.length > 0) {
    for (const id of p.samples) self.set(id, (self.get(id) ?? 0) + 1);
  } else {
    for (const n of p.nodes) if ((n.hitCount ?? 0) > 0) self.set(n.id, n.hitCount ?? 0);
  }
  let total = 0;
  let idle = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, { name: string; where: string; area: string; n: number }>();
  for (const [id, n] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    total += n;
    const area = areaOf(node.callFrame);
    if (area.startsWith('idle')) { idle += n; continue; }
    areas.set(area, (areas.get(area) ?? 0) + n);
    const where = shortWhere(node.callFrame);
    const name = node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName;
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, area, n: 0 };
    f.n += n;
    fns.set(key, f);
  }
  const busyN = Math.max(1, total - idle);
  return {
    durationS: (p.endTime - p.startTime) / 1e6,
    samples: total,
    busy: total === 0 ? 0 : (total - idle) / total,
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, n]) => ({ area, share: n / Math.max(1, total), busyShare: n / busyN })),
    top: [...fns.values()].sort((a, b) => b.n - a.n).slice(0, topN)
      .map((f) => ({ name: f.name, where: f.where, area: f.area, busyShare: f.n / busyN })),
  };
}

const pct = (x: number): string => `${(x * 100).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} %`;

/** The summary as two Markdown tables: areas, then the functions with the most self time. */
export function profileTables(s: ProfileSummary): string {
  const areas = ['| area | share of busy time | share of all samples |', '|---|---:|---:|',
    ...s.areas.map((a) => `| ${a.area} | ${pct(a.busyShare)} | ${pct(a.share)} |`)];
  const top = ['| function | where | area | share of busy time |', '|---|---|---|---:|',
    ...s.top.map((f) => `| \`${f.name.replace(/\|/g, '/')}\` | ${f.where.replace(/\|/g, '/')} | ${f.area} | ${pct(f.busyShare)} |`)];
  return `${areas.join('\n')}\n\n${top.join('\n')}`;
}
