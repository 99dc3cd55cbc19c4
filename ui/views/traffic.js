// Traffic shifting: per route, a slider and a number per backend with the split previewed before anything is sent,
// Apply with the version read (a concurrent change is refused with 409, never overwritten), one-click rollback to
// the weights before the last change this tab saw; beside the configured weights, the split the sidecars measured
// (GET /api/v1/routes/split?window=, polled every 5 s while this view is shown).
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { ApiError, api, POLL_MS, usePoll } from '../lib/api.js';
import { parseBackends, percent } from '../lib/parse.js';
import { inNamespace, NamespaceSelect } from '../lib/namespace.js';
import { WindowSelect } from './overview.js';

/** Route cards drawn at most (each holds sliders and inputs): beyond, the filters narrow the list. */
const MAX_CARDS = 50;

/** The measured backend of a configured backend id ("web/v1"; a subset backend may be named "web subset=v1"). */
function measuredOf(split, id) {
  if (split === undefined) return undefined;
  const norm = (s) => s.replace(/\s+subset=/, '/');
  return split.backends.find((b) => b.backend === id) ?? split.backends.find((b) => norm(b.backend) === id);
}

function RouteShifter({ route, token, writable, previous, split, win }) {
  const current = parseBackends(route.spec.backends);
  const [draft, setDraft] = useState(undefined); // {version, weights: {id: w}}
  const [result, setResult] = useState(undefined); // {kind: ok|error, text, conflict?}
  const [busy, setBusy] = useState(false);
  const weights = draft?.weights ?? Object.fromEntries(current.map((b) => [b.id, b.weight]));
  const ids = current.map((b) => b.id);
  const total = ids.reduce((a, id) => a + (weights[id] ?? 0), 0);
  const max = Math.max(100, ...ids.map((id) => weights[id] ?? 0));
  const changed = draft !== undefined && ids.some((id) => draft.weights[id] !== current.find((b) => b.id === id)?.weight);
  const prevBackends = previous === undefined ? undefined : parseBackends(previous);
  const canRollback = writable && prevBackends !== undefined && prevBackends.length > 0
    && prevBackends.every((b) => ids.includes(b.id)) && ids.every((id) => prevBackends.some((b) => b.id === id)) && previous !== route.spec.backends;
  const slug = route.name.replace(/[^A-Za-z0-9_-]/g, '_');
  const measuredTotal = split === undefined ? 0 : split.backends.reduce((a, b) => a + b.requests, 0);
  const measuredText = (m) => (split === undefined ? 'measured: –' : m === undefined ? 'measured: not seen' : `measured ${(Math.round(m.share * 1000) / 10).toFixed(1)}% (${m.requests} req)`);

  const set = (id, value) => {
    const w = Math.max(0, Math.min(10_000, Math.round(Number(value) || 0)));
    setResult(undefined);
    setDraft((d) => ({ version: d?.version ?? route.version, weights: { ...(d?.weights ?? weights), [id]: w } }));
  };
  const send = async (body, what) => {
    setBusy(true);
    try {
      const r = await api(token, 'POST', `/api/v1/routes/${encodeURIComponent(route.name)}/weights`, body);
      setDraft(undefined);
      setResult({ kind: 'ok', text: `${what}: revision ${r.revision}.` });
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setResult({ kind: 'error', conflict: true, text: `Conflict (409): route ${route.name} changed since you read it at version ${body.version}, so nothing was applied. ${err.message}` });
      } else if (err instanceof ApiError && err.status === 403) {
        setResult({ kind: 'error', text: 'Refused (403): this token is read-only; it cannot change weights.' });
      } else if (err instanceof ApiError && err.status === 422) {
        const issues = (err.body?.issues ?? []).map((i) => `${i.value ?? ''} expected ${i.expected}`).join('; ');
        setResult({ kind: 'error', text: `Invalid (422): ${issues || err.message}` });
      } else {
        setResult({ kind: 'error', text: `Not applied: ${err.message}` });
      }
    } finally {
      setBusy(false);
    }
  };
  const apply = () => send({ weights: Object.fromEntries(ids.map((id) => [id, weights[id] ?? 0])), version: draft?.version ?? route.version }, 'Applied');
  const rollback = () => send({ weights: Object.fromEntries(prevBackends.map((b) => [b.id, b.weight])), version: route.version }, 'Rolled back');

  return html`<div class="card" data-route=${route.name} role="group" aria-labelledby=${`route-${slug}-title`}>
    <h3 id=${`route-${slug}-title`}>Route ${route.name}</h3>
    <div class="sub">service ${route.spec.service ?? '?'} · version ${route.version}${draft !== undefined && draft.version !== route.version ? html` · <strong>editing version ${draft.version}; the route changed since</strong>` : ''}</div>
    <div class="weights-head" aria-hidden="true"><span>backend</span><span>weight</span><span></span><span>configured</span><span>measured (last ${win})</span></div>
    <div class="weights">
      ${ids.map((id, n) => html`
        <label for=${`w-${slug}-${n}`}><code>${id}</code></label>
        <input type="range" id=${`w-${slug}-${n}`} data-backend=${id} min="0" max=${max} step="1" value=${weights[id] ?? 0} disabled=${!writable || busy}
          onInput=${(e) => set(id, e.currentTarget.value)} aria-describedby=${`p-${slug}-${n}`} />
        <input type="number" aria-label=${`weight of ${id}`} data-backend-number=${id} min="0" max="10000" value=${weights[id] ?? 0} disabled=${!writable || busy}
          onChange=${(e) => set(id, e.currentTarget.value)} />
        <span id=${`p-${slug}-${n}`} class="preview" data-preview=${id}>${percent(weights[id] ?? 0, total)}%</span>
        <span class="measured-share" data-measured=${id} title=${`requests the sidecars sent to ${id} in the last ${win}`}>${measuredText(measuredOf(split, id))}</span>`)}
    </div>
    <div class="bar-label" aria-hidden="true">configured${changed ? ' (preview)' : ''}</div>
    <div class="split" aria-hidden="true">
      ${ids.map((id, n) => html`<span class=${`s${n % 6}`} style=${{ width: `${percent(weights[id] ?? 0, total)}%` }}>${id}</span>`)}
    </div>
    <div class="bar-label" aria-hidden="true">measured, last ${win}</div>
    <div class="split measured" aria-hidden="true" data-measured-bar=${route.name}>
      ${measuredTotal > 0 ? ids.map((id, n) => html`<span class=${`s${n % 6}`} style=${{ width: `${Math.round((measuredOf(split, id)?.share ?? 0) * 1000) / 10}%` }}>${id}</span>`) : html`<span class="none">no requests measured in the last ${win}</span>`}
    </div>
    <div class="muted">${changed ? 'Preview of the split after Apply' : 'Current split'}: ${ids.map((id) => `${id} ${percent(weights[id] ?? 0, total)}%`).join(', ')}${total === 0 ? ' (all weights 0: not allowed)' : ''}</div>
    <div class="actions">
      <button class="primary" type="button" data-action="apply" onClick=${apply} disabled=${!writable || busy || !changed || total === 0}>Apply</button>
      <button class="secondary" type="button" data-action="reset" onClick=${() => { setDraft(undefined); setResult(undefined); }} disabled=${draft === undefined || busy}>${result?.conflict ? 'Load the current weights' : 'Reset'}</button>
      <button class="secondary" type="button" data-action="rollback" onClick=${rollback} disabled=${!canRollback || busy || changed}
        title=${prevBackends === undefined ? 'no earlier weights seen in this session' : `back to ${previous}`}>Roll back${prevBackends === undefined ? '' : ` to ${prevBackends.map((b) => `${b.id}=${b.weight}`).join(', ')}`}</button>
    </div>
    ${result !== undefined && html`<p class=${`banner ${result.kind}`} role=${result.kind === 'error' ? 'alert' : 'status'} data-result=${result.kind}>${result.text}</p>`}
  </div>`;
}


export function Traffic({ routes: allRoutes, token, writable, previous, onLogout, ns, setNs }) {
  const [win, setWin] = useState(() => sessionStorage.getItem('remora.splitWindow') ?? '1m');
  const path = `/api/v1/routes/split?window=${encodeURIComponent(win)}`;
  const { data, error, updated } = usePoll(token, path, onLogout, 'the measured split');
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const routes = allRoutes.filter((r) => inNamespace(ns, r.spec.service ?? r.name) && (needle === '' || r.name.toLowerCase().includes(needle) || (r.spec.service ?? '').toLowerCase().includes(needle)));
  const shown = routes.slice(0, MAX_CARDS);
  const splits = new Map((data?.routes ?? []).map((r) => [r.route, r]));
  return html`<section aria-labelledby="traffic-title" data-namespace=${ns}>
    <h2 id="traffic-title">Traffic shifting</h2>
    ${!writable && html`<p class="banner info" role="note" id="read-only-note">Read-only token: you see the weights; moving them, Apply and Roll back are disabled (the API refuses writes from this token with 403).</p>`}
    <div class="toolbar">
      <${WindowSelect} id="split-window" value=${win} onChange=${(w) => { sessionStorage.setItem('remora.splitWindow', w); setWin(w); }} />
      <${NamespaceSelect} id="traffic-namespace" value=${ns} onChange=${setNs} names=${allRoutes.map((r) => r.spec.service ?? r.name)} />
      <label for="traffic-filter">Route or service</label>
      <input id="traffic-filter" type="search" value=${filter} placeholder="name contains…" onInput=${(e) => setFilter(e.currentTarget.value)} />
      <span class="muted" id="split-updated" role="status">${data === undefined ? 'measured split: loading…' : `measured split updated ${updated?.toLocaleTimeString() ?? ''} · refreshed every ${POLL_MS / 1000} s`}</span>
    </div>
    ${error !== undefined && html`<p class="banner warn" role="note" id="split-error">${error.text}</p>`}
    <p class="muted">Move a slider to preview the split; Apply sends the weights with the version you read (a concurrent change is refused, not overwritten). Roll back returns to the weights before the last change this tab saw. The lower bar is the split the sidecars measured: the requests their routers sent to each backend in the last ${win}.</p>
    ${allRoutes.length === 0 && html`<p class="muted">No routes yet.</p>`}
    <p class="muted" id="traffic-count" data-routes=${routes.length} data-shown=${shown.length}>${routes.length === allRoutes.length ? `${routes.length} route${routes.length === 1 ? '' : 's'}` : `${routes.length} of ${allRoutes.length} routes`}${shown.length < routes.length ? `: the first ${shown.length} shown; narrow with the namespace or the name filter` : ''}.</p>
    ${shown.map((r) => html`<${RouteShifter} key=${r.name} route=${r} token=${token} writable=${writable} previous=${previous[r.name]} split=${splits.get(r.name)} win=${win} />`)}
  </section>`;
}
