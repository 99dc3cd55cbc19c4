// `remora ctl`'s tables of the sidecars' status reports (docs/control-plane.md#sidecar-status): the READY and
// CERT EXPIRES cells of `ctl sidecars`, `ctl endpoints` (health per endpoint over the reporting sidecars),
// `ctl stat --policies` (decisions per authorization policy) and `ctl stat --routes` (the live traffic split).
import type { EndpointView, PolicyView, RouteSplitView } from '../control/status-aggregator.js';

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

/** yes / no, "-" before the sidecar's first status report. */
export function readyCell(ready: boolean | null | undefined): string {
  return ready === true ? 'yes' : ready === false ? 'no' : '-';
}

/** "2026-12-04 21:40" (UTC, to the minute), "-" without a certificate. */
export function expiresCell(certificate: { readonly notAfter: string } | null | undefined): string {
  return certificate === null || certificate === undefined ? '-' : certificate.notAfter.slice(0, 16).replace('T', ' ');
}

export function renderEndpoints(endpoints: readonly EndpointView[], service: string | undefined): string {
  if (endpoints.length === 0) return `no endpoints reported${service === undefined ? '' : ` for ${service}`} (no sidecar reported status in the last 30 s)\n`;
  return table([
    ['SERVICE', 'ENDPOINT', 'LABELS', 'WEIGHT', 'HEALTHY', 'EJECTED', 'EJECTIONS', 'ACTIVE'],
    ...endpoints.map((e) => [
      e.service, e.address, Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-', String(e.weight),
      `${e.healthy}/${e.sidecars}`, `${e.ejected}/${e.sidecars}`, String(e.ejections), String(e.activeConnections),
    ]),
  ]);
}

export function renderPolicies(window: string, policies: readonly PolicyView[]): string {
  if (policies.length === 0) return `no authorization policies (window ${window})\n`;
  return table([
    ['POLICY', 'ACTION', 'ALLOWED', 'DENIED', 'AUDITED', 'WOULD_DENY'],
    ...policies.map((p) => [p.name, p.action, String(p.allowed), String(p.denied), p.action === 'audit' ? String(p.audited) : '-', p.action === 'audit' ? String(p.wouldDeny) : '-']),
  ]);
}

export function renderSplit(window: string, routes: readonly RouteSplitView[]): string {
  if (routes.length === 0) return `no routes (window ${window})\n`;
  return table([
    ['ROUTE', 'SERVICE', 'BACKEND', 'WEIGHT', 'REQUESTS', 'SHARE'],
    ...routes.flatMap((r) => r.backends.map((b) => [r.route, r.service, b.backend, String(b.weight), String(b.requests), `${(b.share * 100).toFixed(1)}%`])),
  ]);
}
