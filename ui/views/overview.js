// The Overview: the mesh's golden metrics (GET /api/v1/metrics?window=), polled every 5 s while shown (the metrics
// have no change stream): the drawn service graph, then per-service and per-edge tables (virtualised), all filtered
// by the namespace selector.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { POLL_MS, usePoll } from '../lib/api.js';
import { fmtMs, fmtRps, fmtSuccess, health, HealthBadge } from '../lib/format.js';
import { ALL, inNamespace, NamespaceSelect } from '../lib/namespace.js';
import { VirtualTable } from '../lib/virtual-table.js';
import { MeshGraph } from './mesh-graph.js';

export const METRIC_WINDOWS = ['1m', '5m', '15m'];

export function WindowSelect({ id, value, onChange }) {
  return html`<label for=${id}>Time window</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${METRIC_WINDOWS.map((w) => html`<option value=${w}>last ${w}</option>`)}
    </select>`;
}

export function Overview({ token, onLogout, ns, setNs }) {
  const [win, setWin] = useState(() => sessionStorage.getItem('remora.metricsWindow') ?? '1m');
  const path = `/api/v1/metrics?window=${encodeURIComponent(win)}`;
  const { data, path: dataPath, error, updated } = usePoll(token, path, onLogout, 'the metrics');
  const choose = (w) => { sessionStorage.setItem('remora.metricsWindow', w); setWin(w); };
  const allServices = data?.services ?? [];
  const allEdges = data?.edges ?? [];
  const services = allServices.filter((s) => inNamespace(ns, s.name));
  const edges = allEdges.filter((e) => inNamespace(ns, e.source) || inNamespace(ns, e.destination));
  const names = [...allServices.map((s) => s.name), ...allEdges.flatMap((e) => [e.source, e.destination])];
  const fresh = data !== undefined && dataPath === path;
  const svcHead = html`<tr><th scope="col">Service</th><th scope="col">Health</th><th scope="col" class="num">Success</th><th scope="col" class="num">RPS</th>
    <th scope="col" class="num">P50</th><th scope="col" class="num">P95</th><th scope="col" class="num">P99</th><th scope="col" class="num">TCP conns</th><th scope="col" class="num">Requests</th></tr>`;
  const edgeHead = html`<tr><th scope="col">Source → destination</th><th scope="col">Health</th><th scope="col" class="num">Success</th><th scope="col" class="num">RPS</th>
    <th scope="col" class="num">P50</th><th scope="col" class="num">P95</th><th scope="col" class="num">P99</th><th scope="col">mTLS</th><th scope="col">Reported by</th></tr>`;
  return html`<section aria-labelledby="overview-title" id="overview" data-window=${fresh ? data.window : ''} data-namespace=${ns}>
    <h2 id="overview-title">Mesh overview</h2>
    <div class="toolbar">
      <${WindowSelect} id="metrics-window" value=${win} onChange=${choose} />
      <${NamespaceSelect} id="overview-namespace" value=${ns} onChange=${setNs} names=${names} />
      <span class="muted" id="metrics-updated" role="status">${data === undefined ? 'loading…'
        : `${data.sidecars} sidecar${data.sidecars === 1 ? '' : 's'} reporting · updated ${updated?.toLocaleTimeString() ?? ''} · refreshed every ${POLL_MS / 1000} s`}</span>
    </div>
    ${error !== undefined && html`<p class="banner error" role="alert" id="metrics-error">${error.text}</p>`}
    ${data !== undefined && data.droppedEdges > 0 && html`<p class="banner warn" role="note">${data.droppedEdges} samples of new edges were dropped: the control plane keeps a bounded number of edges.</p>`}
    <p class="muted">Golden metrics from the sidecars' reports over the last ${win}: per service as its own sidecars see it (else its callers'), success = responses other than 5xx. Health: healthy ≥ 99%, degraded ≥ 95%, failing below.${ns === ALL ? '' : ` Namespace ${ns}: its services, and the edges from or to them.`}</p>
    ${data !== undefined && allServices.length === 0 && allEdges.length === 0 && html`<p class="banner info" id="metrics-empty">${data.sidecars === 0
      ? 'No sidecar has reported metrics yet.'
      : `No traffic in the last ${data.window}: ${data.sidecars} sidecar${data.sidecars === 1 ? '' : 's'} reporting, no requests or connections seen.`}</p>`}
    <${MeshGraph} services=${services} edges=${edges} ns=${ns} />
    <h3 id="svc-metrics-title">Services <span class="muted count">(${services.length}${ns === ALL ? '' : ` of ${allServices.length}`})</span></h3>
    <${VirtualTable} id="metrics-services" label="Services' golden metrics" head=${svcHead} columns=${9} rows=${services}
      renderRow=${(s) => html`<tr key=${s.name} data-service=${s.name} class=${`health-${health(s.successRate).kind}`}>
        <th scope="row">${s.name}</th>
        <td><${HealthBadge} rate=${s.successRate} /></td>
        <td class="num" data-col="success">${fmtSuccess(s.successRate)}</td>
        <td class="num" data-col="rps">${fmtRps(s.rps)}</td>
        <td class="num" data-col="p50">${fmtMs(s.p50)}</td>
        <td class="num" data-col="p95">${fmtMs(s.p95)}</td>
        <td class="num" data-col="p99">${fmtMs(s.p99)}</td>
        <td class="num" data-col="tcp">${s.tcpConnections}</td>
        <td class="num" data-col="requests">${s.requests}</td>
      </tr>`} />
    <h3 id="edge-metrics-title">Edges <span class="muted count">(${edges.length}${ns === ALL ? '' : ` of ${allEdges.length}`})</span></h3>
    <${VirtualTable} id="metrics-edges" label="Edges' golden metrics" head=${edgeHead} columns=${9} rows=${edges}
      renderRow=${(e) => html`<tr key=${`${e.source} ${e.destination}`} data-edge=${`${e.source}->${e.destination}`} class=${`health-${health(e.successRate).kind}`}>
        <th scope="row">${e.source} <span aria-label="to">→</span> ${e.destination}</th>
        <td><${HealthBadge} rate=${e.successRate} /></td>
        <td class="num" data-col="success">${fmtSuccess(e.successRate)}</td>
        <td class="num" data-col="rps">${fmtRps(e.rps)}</td>
        <td class="num" data-col="p50">${fmtMs(e.p50)}</td>
        <td class="num" data-col="p95">${fmtMs(e.p95)}</td>
        <td class="num" data-col="p99">${fmtMs(e.p99)}</td>
        <td data-col="mtls">${e.mtls ? html`<span class="mtls yes" title="every request of this edge in the window went over mesh mTLS">✓ mTLS</span>` : html`<span class="mtls no" title="some or all requests were plaintext">plaintext</span>`}</td>
        <td>${e.reporter}</td>
      </tr>`} />
  </section>`;
}
