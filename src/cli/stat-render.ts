// `remora ctl stat`'s table (Linkerd's `viz stat` columns): per service SUCCESS, RPS, LATENCY_P50/P95/P99 (ms) and
// TCP_CONN; "-" where there were no requests in the window.
import type { MetricsView } from '../control/metrics-aggregator.js';

const ms = (v: number | null): string => (v === null ? '-' : `${Number(v.toFixed(v < 10 ? 2 : 0))}ms`);
const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);
const rps = (v: number): string => `${v.toFixed(v < 10 ? 2 : 1)}rps`;

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

export function renderStat(view: MetricsView): string {
  if (view.services.length === 0) return `no traffic reported in the last ${view.window} (${view.sidecars} sidecar${view.sidecars === 1 ? '' : 's'} reporting)\n`;
  return table([
    ['SERVICE', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', 'TCP_CONN'],
    ...view.services.map((s) => [s.name, pct(s.successRate), rps(s.rps), ms(s.p50), ms(s.p95), ms(s.p99), String(s.tcpConnections)]),
  ]);
}
