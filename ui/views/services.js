// Services: every service of the desired state (addresses, endpoints, subsets), the endpoints' health as the
// sidecars see it (GET /api/v1/endpoints, polled every 5 s while shown: it has no change stream), and every route.
// Tables are virtualised and filtered by the namespace selector; a service's name selects it for the endpoints table.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { usePoll } from '../lib/api.js';
import { parseBackends, parseEndpoints, percent } from '../lib/parse.js';
import { ALL, inNamespace, namespaceOf, NamespaceSelect } from '../lib/namespace.js';
import { VirtualTable } from '../lib/virtual-table.js';

const labelsText = (labels) => Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');

/** An endpoint's health in words: the sidecars' verdicts summed (contract: healthy/ejected of `sidecars`). */
export function endpointHealth(e) {
  if (e.sidecars === 0) return { kind: 'idle', text: 'not reported' };
  if (e.ejected > 0) return { kind: 'bad', text: `ejected on ${e.ejected} of ${e.sidecars}` };
  if (e.healthy < e.sidecars) return { kind: 'warn', text: `healthy on ${e.healthy} of ${e.sidecars}` };
  return { kind: 'ok', text: `healthy on ${e.healthy} of ${e.sidecars}` };
}

function summary(list) {
  if (list === undefined || list.length === 0) return { kind: 'none', text: 'not reported' };
  const ejected = list.filter((e) => e.ejected > 0).length;
  const unhealthy = list.filter((e) => e.sidecars > 0 && e.healthy < e.sidecars).length;
  if (ejected > 0) return { kind: 'bad', text: `${ejected} of ${list.length} ejected` };
  if (unhealthy > 0) return { kind: 'warn', text: `${unhealthy} of ${list.length} unhealthy somewhere` };
  return { kind: 'ok', text: `${list.length} healthy` };
}

export function Services({ services: allServices, routes: allRoutes, token, onLogout, ns, setNs }) {
  const [chosen, setChosen] = useState(undefined);
  const { data, error } = usePoll(token, '/api/v1/endpoints', onLogout, 'the endpoints\' health');
  const services = allServices.filter((s) => inNamespace(ns, s.name));
  const routes = allRoutes.filter((r) => inNamespace(ns, r.spec.service ?? r.name));
  const byService = new Map();
  for (const e of data?.endpoints ?? []) {
    if (!byService.has(e.service)) byService.set(e.service, []);
    byService.get(e.service).push(e);
  }
  const endpoints = (data?.endpoints ?? []).filter((e) => (chosen === undefined ? inNamespace(ns, e.service) : e.service === chosen));
  const svcHead = html`<tr><th scope="col">Service</th><th scope="col">Namespace</th><th scope="col">Addresses</th><th scope="col">Endpoints</th><th scope="col">Subsets</th><th scope="col">Endpoint health</th><th scope="col" class="num">Version</th></tr>`;
  const epHead = html`<tr><th scope="col">Service</th><th scope="col">Endpoint</th><th scope="col">Labels</th><th scope="col" class="num">Weight</th><th scope="col">Health</th><th scope="col" class="num">Ejected now</th><th scope="col" class="num">Ejections</th><th scope="col" class="num">Active conns</th></tr>`;
  const routeHead = html`<tr><th scope="col">Route</th><th scope="col">Service</th><th scope="col">Matches</th><th scope="col">Backends and weights</th><th scope="col" class="num">Version</th></tr>`;
  return html`<section aria-labelledby="services-title" data-namespace=${ns}>
    <h2 id="services-title">Services <span class="muted count">(${services.length}${ns === ALL ? '' : ` of ${allServices.length}`})</span></h2>
    <div class="toolbar"><${NamespaceSelect} id="services-namespace" value=${ns} onChange=${(v) => { setChosen(undefined); setNs(v); }} names=${allServices.map((s) => s.name)} /></div>
    ${allServices.length === 0 && html`<p class="muted">No services yet.</p>`}
    <${VirtualTable} id="services-table" label="Services" head=${svcHead} columns=${7} rows=${services} renderRow=${(s) => {
      const eps = parseEndpoints(s.spec.endpoints);
      const subsets = new Map();
      for (const e of eps) if (e.labels.subset !== undefined) subsets.set(e.labels.subset, (subsets.get(e.labels.subset) ?? 0) + 1);
      const sum = summary(data === undefined ? undefined : byService.get(s.name));
      const epText = eps.map((e) => `${e.address}${labelsText(e.labels) === '' ? '' : ` ${labelsText(e.labels)}`}`).join(', ');
      return html`<tr key=${s.name} data-service=${s.name} class=${chosen === s.name ? 'chosen' : ''}>
        <th scope="row"><button type="button" class="link" aria-pressed=${chosen === s.name} title="show this service's endpoints below" onClick=${() => setChosen(chosen === s.name ? undefined : s.name)}>${s.name}</button></th>
        <td>${namespaceOf(s.name)}</td>
        <td title=${s.spec.addresses ?? ''}><code>${s.spec.addresses ?? ''}</code></td>
        <td class="endpoints" title=${epText}>${eps.length === 0 ? html`<span class="muted">${s.spec.discovery === undefined ? 'none' : `discovery: ${s.spec.discovery}`}</span>` : html`<code>${epText}</code>`}</td>
        <td class="subsets">${[...subsets].map(([n, c]) => html`<span class="subset">${n} <span class="muted">(${c} endpoint${c === 1 ? '' : 's'})</span></span>`)}</td>
        <td data-col="endpoint-health">${sum.kind === 'none' ? html`<span class="muted">${sum.text}</span>` : html`<span class=${`badge health-${sum.kind}`}>${sum.text}</span>`}</td>
        <td class="num">${s.version}</td>
      </tr>`;
    }} />
    <h3 id="endpoints-title">Endpoints ${chosen === undefined ? html`of ${ns === ALL ? 'every service' : `namespace ${ns}`}` : html`of <code>${chosen}</code> <button type="button" class="secondary small" onClick=${() => setChosen(undefined)}>show all</button>`}
${' '}<span class="muted count">(${endpoints.length})</span></h3>
    <p class="muted">As the sidecars see them now: healthy / ejected on how many of the sidecars that reported the endpoint (passive health checking ejects an endpoint after consecutive failures), the ejections counted so far, and the connections open to it.</p>
    ${error !== undefined && html`<p class="banner warn" role="note" id="endpoints-error">${error.text}</p>`}
    <${VirtualTable} id="endpoints-table" label="Endpoints" head=${epHead} columns=${8} rows=${endpoints} renderRow=${(e) => {
      const hl = endpointHealth(e);
      return html`<tr key=${`${e.service} ${e.address}`} data-endpoint=${`${e.service} ${e.address}`} class=${`health-${hl.kind}`}>
        <th scope="row">${e.service}</th>
        <td><code>${e.address}</code></td>
        <td data-col="labels">${labelsText(e.labels) || html`<span class="muted">none</span>`}</td>
        <td class="num" data-col="weight">${e.weight}</td>
        <td data-col="health"><span class=${`badge health-${hl.kind}`}>${hl.text}</span></td>
        <td class="num" data-col="ejected">${e.ejected}</td>
        <td class="num" data-col="ejections">${e.ejections}</td>
        <td class="num" data-col="connections">${e.activeConnections}</td>
      </tr>`;
    }} />
    <h3 id="routes-title">Routes <span class="muted count">(${routes.length}${ns === ALL ? '' : ` of ${allRoutes.length}`})</span></h3>
    ${allRoutes.length === 0 && html`<p class="muted">No routes yet.</p>`}
    <${VirtualTable} id="routes-table" label="Routes" head=${routeHead} columns=${5} rows=${routes} renderRow=${(r) => {
      const backends = parseBackends(r.spec.backends);
      const total = backends.reduce((a, b) => a + b.weight, 0);
      const matches = Object.entries(r.spec).filter(([k]) => k.startsWith('match'));
      const matchText = matches.map(([k, v]) => `${k} = ${v}`).join('; ');
      return html`<tr key=${r.name} data-route=${r.name}>
        <th scope="row">${r.name}</th>
        <td>${r.spec.service ?? ''}</td>
        <td title=${matchText}>${matches.length === 0 ? html`<span class="muted">everything</span>` : html`<code>${matchText}</code>`}</td>
        <td class="backends">${backends.map((b) => html`<span data-backend=${b.id}><code>${b.id}</code> weight ${b.weight} (${percent(b.weight, total)}%)</span>`)}</td>
        <td class="num">${r.version}</td>
      </tr>`;
    }} />
  </section>`;
}
