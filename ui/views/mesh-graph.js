// The drawn service graph of the Overview: nodes are the services (and the client workloads that call them) of the
// golden metrics, arrows the edges source -> destination with their RPS, success rate, p50/p95/p99 and an mTLS mark.
// Health is written on every node and edge (healthy/degraded/failing) as well as coloured. Nodes and edges are
// focusable (Tab); the focused or clicked one's numbers are spelled out in the panel under the graph (aria-live).
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { edgePath, layoutGraph, NODE_H, NODE_W } from '../lib/graph-layout.js';
import { fmtMs, fmtNum, fmtRps, fmtSuccess, health } from '../lib/format.js';
import { namespaceOf } from '../lib/namespace.js';

/** Beyond this many nodes the graph is not drawn (the tables still list everything): pick a namespace. */
export const GRAPH_MAX_NODES = 120;

const edgeKey = (e) => `${e.source}->${e.destination}`;
const latencies = (m) => `p50 ${fmtNum(m.p50)} · p95 ${fmtNum(m.p95)} · p99 ${fmtMs(m.p99)}`;
const mtlsText = (e) => (e.mtls ? '✓ mTLS' : 'plaintext');

function nodeText(name, svc) {
  if (svc === undefined) return `workload ${name} (namespace ${namespaceOf(name)}): calls only, no metrics as a destination`;
  return `service ${name} (namespace ${namespaceOf(name)}): ${health(svc.successRate).text}, success ${fmtSuccess(svc.successRate)}, `
    + `${fmtRps(svc.rps)} rps, ${latencies(svc)}, ${svc.tcpConnections} TCP connections, ${svc.requests} requests`;
}
const edgeText = (e) => `edge ${e.source} to ${e.destination}: ${health(e.successRate).text}, success ${fmtSuccess(e.successRate)}, `
  + `${fmtRps(e.rps)} rps, ${latencies(e)}, ${e.mtls ? 'mutual TLS' : 'plaintext'}, ${e.requests} requests, reported by the ${e.reporter}`;

/** services / edges: the metrics' rows already filtered by namespace; ns: the namespace selected ('' = all). */
/**
 * A node's name: a SPIFFE ID (a destination-reported edge from a client without workload labels names it by its
 * principal) is drawn as its service account, the workload name the caller's own sidecar reports (Istio's rule), so
 * both sides of one caller are one node.
 */
export function nodeName(name) {
  const m = /^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/([^/]+)$/.exec(name);
  return m === null ? name : m[1];
}

/** Edges with their ends renamed by nodeName; where two become one (both sides reported), the first is kept. */
function graphEdges(edges) {
  const out = new Map();
  for (const e of edges) {
    const g = { ...e, source: nodeName(e.source), destination: nodeName(e.destination) };
    const k = edgeKey(g);
    if (!out.has(k)) out.set(k, g);
  }
  return [...out.values()];
}

export function MeshGraph({ services, edges: rawEdges, ns }) {
  const [selected, setSelected] = useState(undefined); // {kind: 'node'|'edge', key}
  const edges = graphEdges(rawEdges);
  const byName = new Map(services.map((s) => [s.name, s]));
  const names = [...new Set([...services.map((s) => s.name), ...edges.flatMap((e) => [e.source, e.destination])])];
  if (names.length === 0) return null;
  if (names.length > GRAPH_MAX_NODES) {
    return html`<p class="banner info" id="graph-too-big" role="note">${names.length} services and workloads${ns === '' ? '' : ` in or calling ${ns}`}: too many to draw
      (at most ${GRAPH_MAX_NODES}). Pick a namespace to draw its graph; the tables below list every one.</p>`;
  }
  const { pos, width, height } = layoutGraph(names, edges);
  const bottom = Math.max(...[...pos.values()].map((p) => p.y + NODE_H));
  const detail = selected === undefined ? undefined
    : selected.kind === 'node' ? (names.includes(selected.key) ? nodeText(selected.key, byName.get(selected.key)) : undefined)
      : (() => { const e = edges.find((x) => edgeKey(x) === selected.key); return e === undefined ? undefined : edgeText(e); })();
  const pick = (kind, key) => () => setSelected({ kind, key });
  const onKey = (kind, key) => (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); setSelected({ kind, key }); } };

  return html`<figure class="graph" aria-labelledby="graph-caption">
    <figcaption id="graph-caption">Service graph: ${names.length} node${names.length === 1 ? '' : 's'}, ${edges.length} edge${edges.length === 1 ? '' : 's'}${ns === '' ? '' : ` (namespace ${ns} and its peers)`}.
      Tab to a node or an edge for its numbers.</figcaption>
    <div class="graph-scroll">
    <svg id="mesh-graph" xmlns="http://www.w3.org/2000/svg" width=${width} height=${height} viewBox=${`0 0 ${width} ${height}`} role="group" aria-label="service graph">
      <defs>
        ${['ok', 'warn', 'bad', 'idle'].map((k) => html`<marker id=${`arrow-${k}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M0,0 L10,5 L0,10 z" class=${`arrowhead health-${k}`} /></marker>`)}
      </defs>
      ${edges.filter((e) => pos.has(e.source) && pos.has(e.destination)).map((e) => {
        const hl = health(e.successRate);
        const key = edgeKey(e);
        const self = e.source === e.destination;
        const a = pos.get(e.source);
        const p = self
          ? { d: `M${a.x + NODE_W - 30},${a.y} C${a.x + NODE_W},${a.y - 40} ${a.x + NODE_W + 40},${a.y} ${a.x + NODE_W},${a.y + 14}`, lx: a.x + NODE_W + 10, ly: a.y - 30 }
          : edgePath(a, pos.get(e.destination), bottom);
        const on = selected?.kind === 'edge' && selected.key === key;
        return html`<g key=${key} class=${`edge health-${hl.kind}${e.mtls ? ' mtls' : ' plain'}${on ? ' selected' : ''}`} data-edge=${key}
            tabindex="0" role="img" aria-label=${edgeText(e)} onFocus=${pick('edge', key)} onClick=${pick('edge', key)} onKeyDown=${onKey('edge', key)}>
          <path class="edge-line" d=${p.d} marker-end=${`url(#arrow-${hl.kind})`} />
          <path class="edge-hit" d=${p.d} />
          <text x=${p.lx} y=${p.ly - 32} text-anchor="middle" class="edge-label">
            <tspan data-col="health">${hl.text}</tspan> <tspan data-col="success">${fmtSuccess(e.successRate)}</tspan> · <tspan data-col="rps">${fmtRps(e.rps)}</tspan> rps
          </text>
          <text x=${p.lx} y=${p.ly - 18} text-anchor="middle" class="edge-label" data-col="latency">${latencies(e)}</text>
          <text x=${p.lx} y=${p.ly - 4} text-anchor="middle" class=${`edge-label mtls-mark ${e.mtls ? 'yes' : 'no'}`} data-col="mtls">${mtlsText(e)}</text>
        </g>`;
      })}
      ${names.map((n) => {
        const p = pos.get(n);
        const svc = byName.get(n);
        const hl = health(svc?.successRate);
        const on = selected?.kind === 'node' && selected.key === n;
        return html`<g key=${n} class=${`node health-${svc === undefined ? 'none' : hl.kind}${on ? ' selected' : ''}`} data-node=${n}
            transform=${`translate(${p.x},${p.y})`} tabindex="0" role="img" aria-label=${nodeText(n, svc)}
            onFocus=${pick('node', n)} onClick=${pick('node', n)} onKeyDown=${onKey('node', n)}>
          <rect width=${NODE_W} height=${NODE_H} rx="6" />
          <text x="10" y="20" class="node-name">${n.length > 22 ? `${n.slice(0, 21)}…` : n}</text>
          <text x="10" y="39" class="node-stat" data-col="stat">${svc === undefined ? 'workload (caller)' : `${hl.text} · ${fmtRps(svc.rps)} rps`}</text>
        </g>`;
      })}
    </svg>
    </div>
    <p class="graph-detail" id="graph-detail" aria-live="polite">${detail ?? 'Select a node or an edge (Tab, or click) to read its numbers here.'}</p>
  </figure>`;
}
