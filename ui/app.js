// The remora web UI (docs/ui.md): preact + htm, no build step. It uses only the control plane's public API:
// GET /api/v1/whoami (the token's scope), GET /api/v1/state then the change stream GET /api/v1/watch?since=REV,
// the sidecars' stream GET /api/v1/sidecars/watch, the golden metrics GET /api/v1/metrics?window= (polled every 5 s
// while the Overview is shown: it has no change stream), and POST /api/v1/routes/NAME/weights with the version read.
// Streams are read with fetch (EventSource cannot send the bearer token) and reconnect with backoff.
import { h, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
const TOKEN_KEY = 'remora.token';
const PREVIOUS_KEY = 'remora.previousWeights';
const VIEWS = [['overview', 'Overview'], ['services', 'Services'], ['traffic', 'Traffic shifting'], ['sidecars', 'Sidecars'], ['policies', 'Policies']];

class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.message === 'string' ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(token, method, path, body) {
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json;
  try { json = text === '' ? undefined : JSON.parse(text); } catch { json = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Read a Server-Sent Events stream until it ends; onEvent(name, data) per event. */
async function streamEvents(path, token, onEvent, signal) {
  const res = await fetch(path, { cache: 'no-store', signal, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  if (!res.ok || res.body === null) {
    let body;
    try { body = await res.json(); } catch { body = undefined; }
    throw new ApiError(res.status, body);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, '\n');
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/** Keep a stream open: connect(signal) runs until the stream ends or fails; then back off and reconnect. */
function useStream(connect, onStatus, onFatal, deps) {
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      let delay = 500;
      while (!ctl.signal.aborted) {
        try {
          await connect(ctl.signal, () => { delay = 500; onStatus('live'); });
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) { onFatal('The control plane no longer accepts this token.'); return; }
        }
        if (ctl.signal.aborted) return;
        onStatus('reconnecting');
        await sleep(delay, ctl.signal);
        delay = Math.min(delay * 2, 10_000);
      }
    })();
    return () => { ctl.abort(); };
  }, deps);
}

// ---- parsing the INI values of objects (the same text `remora ctl get` shows) ----

/** "10.1.0.1:8080 subset=v1, 10.1.0.2:8080" -> [{address, labels}] */
export function parseEndpoints(text) {
  if (typeof text !== 'string' || text.trim() === '') return [];
  return text.split(',').map((e) => e.trim()).filter((e) => e !== '').map((e) => {
    const [address = '', ...rest] = e.split(/\s+/);
    const labels = {};
    for (const r of rest) {
      const i = r.indexOf('=');
      if (i > 0) labels[r.slice(0, i)] = r.slice(i + 1);
    }
    return { address, labels };
  });
}

/** "web/v1=90, web/v2=10" or "reviews subset=v1 weight=90, ..." -> [{id, weight}] (no weight given: 1). */
export function parseBackends(text) {
  if (typeof text !== 'string' || text.trim() === '') return [];
  return text.split(',').map((b) => b.trim()).filter((b) => b !== '').map((b) => {
    const [first = '', ...rest] = b.split(/\s+/);
    let id = first;
    let weight = 1;
    const eq = first.indexOf('=');
    if (eq > 0) { id = first.slice(0, eq); weight = Number(first.slice(eq + 1)); }
    for (const r of rest) {
      if (r.startsWith('subset=')) id = `${id}/${r.slice(7)}`;
      else if (r.startsWith('weight=')) weight = Number(r.slice(7));
    }
    return { id, weight };
  });
}

const percent = (w, total) => (total > 0 ? Math.round((w / total) * 1000) / 10 : 0);

function loadPrevious() {
  try { return JSON.parse(sessionStorage.getItem(PREVIOUS_KEY) ?? '{}'); } catch { return {}; }
}

// ---- components ----

function Login({ onLogin, message }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(message ?? '');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const who = await api(token.trim(), 'GET', '/api/v1/whoami');
      if (who.scope === 'sidecar') setError('This is a sidecar token: it cannot read the mesh. Use a read or write token.');
      else onLogin(token.trim(), who.scope);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'The control plane does not accept this token.' : `Cannot log in: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="login" onSubmit=${submit} aria-labelledby="login-title">
    <h2 id="login-title">remora control plane</h2>
    <label for="token">Token</label>
    <input id="token" name="token" type="password" autocomplete="off" required value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
    <button class="primary" type="submit" disabled=${busy}>Log in</button>
    <p class="muted">A read token sees everything and changes nothing; a write token can shift traffic. The token is kept in this tab only (sessionStorage).</p>
    ${error !== '' && html`<p class="banner error" role="alert" id="login-error">${error}</p>`}
  </form>`;
}

function Services({ services, routes }) {
  return html`<section aria-labelledby="services-title">
    <h2 id="services-title">Services</h2>
    ${services.length === 0 && html`<p class="muted">No services yet.</p>`}
    <table id="services-table">
      <thead><tr><th scope="col">Service</th><th scope="col">Addresses</th><th scope="col">Endpoints</th><th scope="col">Subsets</th><th scope="col">Version</th></tr></thead>
      <tbody>
        ${services.map((s) => {
          const endpoints = parseEndpoints(s.spec.endpoints);
          const subsets = new Map();
          for (const e of endpoints) if (e.labels.subset !== undefined) subsets.set(e.labels.subset, (subsets.get(e.labels.subset) ?? 0) + 1);
          return html`<tr key=${s.name} data-service=${s.name}>
            <th scope="row">${s.name}</th>
            <td><code>${s.spec.addresses ?? ''}</code></td>
            <td><ul class="plain">${endpoints.map((e) => html`<li><code>${e.address}</code>${Object.entries(e.labels).map(([k, v]) => html` <span class="muted">${k}=${v}</span>`)}</li>`)}</ul>
              ${endpoints.length === 0 && html`<span class="muted">${s.spec.discovery === undefined ? 'none' : `discovery: ${s.spec.discovery}`}</span>`}</td>
            <td class="subsets">${[...subsets].map(([n, c]) => html`<div>${n} <span class="muted">(${c} endpoint${c === 1 ? '' : 's'})</span></div>`)}</td>
            <td>${s.version}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    <h2 id="routes-title">Routes</h2>
    ${routes.length === 0 && html`<p class="muted">No routes yet.</p>`}
    <table id="routes-table" aria-labelledby="routes-title">
      <thead><tr><th scope="col">Route</th><th scope="col">Service</th><th scope="col">Matches</th><th scope="col">Backends and weights</th><th scope="col">Version</th></tr></thead>
      <tbody>
        ${routes.map((r) => {
          const backends = parseBackends(r.spec.backends);
          const total = backends.reduce((a, b) => a + b.weight, 0);
          const matches = Object.entries(r.spec).filter(([k]) => k.startsWith('match'));
          return html`<tr key=${r.name} data-route=${r.name}>
            <th scope="row">${r.name}</th>
            <td>${r.spec.service ?? ''}</td>
            <td>${matches.length === 0 ? html`<span class="muted">everything</span>` : matches.map(([k, v]) => html`<div><code>${k} = ${v}</code></div>`)}</td>
            <td class="backends">${backends.map((b) => html`<div data-backend=${b.id}><code>${b.id}</code> weight ${b.weight} (${percent(b.weight, total)}%)</div>`)}</td>
            <td>${r.version}</td>
          </tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}

function RouteShifter({ route, token, writable, previous }) {
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
    <div class="weights">
      ${ids.map((id, n) => html`
        <label for=${`w-${slug}-${n}`}><code>${id}</code></label>
        <input type="range" id=${`w-${slug}-${n}`} data-backend=${id} min="0" max=${max} step="1" value=${weights[id] ?? 0} disabled=${!writable || busy}
          onInput=${(e) => set(id, e.currentTarget.value)} aria-describedby=${`p-${slug}-${n}`} />
        <input type="number" aria-label=${`weight of ${id}`} data-backend-number=${id} min="0" max="10000" value=${weights[id] ?? 0} disabled=${!writable || busy}
          onChange=${(e) => set(id, e.currentTarget.value)} />
        <span id=${`p-${slug}-${n}`} class="preview" data-preview=${id}>${percent(weights[id] ?? 0, total)}%</span>`)}
    </div>
    <div class="split" aria-hidden="true">
      ${ids.map((id, n) => html`<span class=${`s${n % 6}`} style=${{ width: `${percent(weights[id] ?? 0, total)}%` }}>${id}</span>`)}
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

function Traffic({ routes, token, writable, previous }) {
  return html`<section aria-labelledby="traffic-title">
    <h2 id="traffic-title">Traffic shifting</h2>
    ${!writable && html`<p class="banner info" role="note" id="read-only-note">Read-only token: you see the weights; moving them, Apply and Roll back are disabled (the API refuses writes from this token with 403).</p>`}
    <p class="muted">Move a slider to preview the split; Apply sends the weights with the version you read (a concurrent change is refused, not overwritten). Roll back returns to the weights before the last change this tab saw.</p>
    ${routes.length === 0 && html`<p class="muted">No routes yet.</p>`}
    ${routes.map((r) => html`<${RouteShifter} key=${r.name} route=${r} token=${token} writable=${writable} previous=${previous[r.name]} />`)}
  </section>`;
}

function Sidecars({ sidecars, revision }) {
  const nacked = sidecars.filter((s) => s.status === 'NACKED');
  return html`<section aria-labelledby="sidecars-title">
    <h2 id="sidecars-title">Sidecars</h2>
    ${nacked.length > 0 && html`<p class="banner error" role="alert" id="nack-alert">${nacked.length} sidecar${nacked.length === 1 ? '' : 's'} refused (NACKed) the config: ${nacked.map((s) => s.name).join(', ')}. They keep serving their last good config.</p>`}
    <p class="muted">Desired state revision ${revision}. SYNCED: applied the last version sent; STALE: sent, not applied yet; NACKED: the last version sent was refused.</p>
    ${sidecars.length === 0 && html`<p class="muted">No sidecar has subscribed.</p>`}
    <table id="sidecars-table">
      <thead><tr><th scope="col">Sidecar</th><th scope="col">Identity</th><th scope="col">Status</th><th scope="col">Connected</th><th scope="col">Version sent</th><th scope="col">Version applied</th><th scope="col">Last seen</th></tr></thead>
      <tbody>
        ${sidecars.map((s) => html`
          <tr key=${`${s.name} ${s.identity}`} data-sidecar=${s.name}>
            <th scope="row">${s.name}</th>
            <td><code>${s.identity === '' ? '(none)' : s.identity}</code></td>
            <td><span class=${`badge ${s.status.replace(' ', '_')}`} data-status=${s.status}>${s.status}</span></td>
            <td>${s.connected ? 'yes' : 'no'}</td>
            <td>${s.versionSent}</td>
            <td>${s.versionApplied}</td>
            <td>${new Date(s.lastSeen).toLocaleTimeString()}</td>
          </tr>
          ${s.lastNackError !== undefined && html`<tr class="nack-row" data-nack=${s.name}><td colspan="7"><strong>NACK of version ${s.lastNackVersion}${s.status === 'NACKED' ? '' : ' (since superseded)'}:</strong><pre class="nack">${s.lastNackError}</pre></td></tr>`}`)}
      </tbody>
    </table>
  </section>`;
}

function Policies({ authorizations }) {
  const order = { deny: 0, allow: 1, audit: 2 };
  const action = (p) => p.spec.action ?? 'allow';
  const sorted = [...authorizations].sort((a, b) => (order[action(a)] ?? 3) - (order[action(b)] ?? 3) || (a.name < b.name ? -1 : 1));
  return html`<section aria-labelledby="policies-title">
    <h2 id="policies-title">Authorization policies</h2>
    <p class="muted">Deny policies are tried first, then allow policies (when any exists, what matches none is denied); audit policies never change the decision. Allow/deny/audit counts need the sidecars' metrics aggregated by the control plane: not shown yet.</p>
    ${authorizations.length === 0 && html`<p class="muted">No authorization policies: every sidecar allows all inbound traffic.</p>`}
    <table id="policies-table">
      <thead><tr><th scope="col">Policy</th><th scope="col">Action</th><th scope="col">Matches</th><th scope="col">Version</th></tr></thead>
      <tbody>
        ${sorted.map((p) => html`<tr key=${p.name} data-policy=${p.name}>
          <th scope="row">${p.name}</th>
          <td><span class=${`badge action-${action(p)}`} data-action-kind=${action(p)}>${action(p)}</span></td>
          <td>${Object.entries(p.spec).filter(([k]) => k !== 'action').map(([k, v]) => html`<div><code>${k} = ${v}</code></div>`)}</td>
          <td>${p.version}</td>
        </tr>`)}
      </tbody>
    </table>
  </section>`;
}

// ---- the mesh overview: golden metrics per service and per edge (GET /api/v1/metrics) ----

const METRIC_WINDOWS = ['1m', '5m', '15m'];
const METRICS_REFRESH_MS = 5_000;

/** Health by success rate (a fraction): text and a class; the colour is never the only sign. */
export function health(successRate) {
  if (successRate === null || successRate === undefined) return { kind: 'idle', text: 'no requests' };
  if (successRate >= 0.99) return { kind: 'ok', text: 'healthy' };
  if (successRate >= 0.95) return { kind: 'warn', text: 'degraded' };
  return { kind: 'bad', text: 'failing' };
}

const fmtSuccess = (v) => (v === null || v === undefined ? '–' : `${(Math.round(v * 1000) / 10).toFixed(1)}%`);
const fmtRps = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v > 0 && v < 0.01 ? '<0.01' : v.toFixed(2));
const fmtMs = (v) => (v === null || v === undefined ? '–' : `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`);

function HealthBadge({ rate }) {
  const hl = health(rate);
  return html`<span class=${`badge health-${hl.kind}`} data-health=${hl.kind}>${hl.text}</span>`;
}

function Overview({ token, onLogout }) {
  const [win, setWin] = useState(() => sessionStorage.getItem('remora.metricsWindow') ?? '1m');
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [updated, setUpdated] = useState(undefined);

  // Poll while this view is mounted (it unmounts when another view is chosen): one request at a time.
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      while (!ctl.signal.aborted) {
        try {
          const m = await api(token, 'GET', `/api/v1/metrics?window=${encodeURIComponent(win)}`);
          if (ctl.signal.aborted) return;
          setData(m);
          setError(undefined);
          setUpdated(new Date());
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (err instanceof ApiError && err.status === 401) { onLogout('The control plane no longer accepts this token.'); return; }
          setError(`Cannot read the metrics: ${err.message}. Retrying every ${METRICS_REFRESH_MS / 1000} s.`);
        }
        await sleep(METRICS_REFRESH_MS, ctl.signal);
      }
    })();
    return () => { ctl.abort(); };
  }, [token, win]);

  const choose = (w) => { sessionStorage.setItem('remora.metricsWindow', w); setWin(w); };
  const services = data?.services ?? [];
  const edges = data?.edges ?? [];
  const fresh = data !== undefined && data.window === win;
  return html`<section aria-labelledby="overview-title" id="overview" data-window=${fresh ? data.window : ''}>
    <h2 id="overview-title">Mesh overview</h2>
    <div class="toolbar">
      <label for="metrics-window">Time window</label>
      <select id="metrics-window" value=${win} onChange=${(e) => choose(e.currentTarget.value)}>
        ${METRIC_WINDOWS.map((w) => html`<option value=${w}>last ${w}</option>`)}
      </select>
      <span class="muted" id="metrics-updated" role="status">${data === undefined ? 'loading…'
        : `${data.sidecars} sidecar${data.sidecars === 1 ? '' : 's'} reporting · updated ${updated?.toLocaleTimeString() ?? ''} · refreshed every ${METRICS_REFRESH_MS / 1000} s`}</span>
    </div>
    ${error !== undefined && html`<p class="banner error" role="alert" id="metrics-error">${error}</p>`}
    ${data !== undefined && data.droppedEdges > 0 && html`<p class="banner warn" role="note">${data.droppedEdges} samples of new edges were dropped: the control plane keeps a bounded number of edges.</p>`}
    <p class="muted">Golden metrics from the sidecars' reports over the last ${win}: per service as its own sidecars see it (else its callers'), success = responses other than 5xx. Health: healthy ≥ 99%, degraded ≥ 95%, failing below.</p>
    ${data !== undefined && services.length === 0 && edges.length === 0 && html`<p class="banner info" id="metrics-empty">${data.sidecars === 0
      ? 'No sidecar has reported metrics yet.'
      : `No traffic in the last ${data.window}: ${data.sidecars} sidecar${data.sidecars === 1 ? '' : 's'} reporting, no requests or connections seen.`}</p>`}
    <h3 id="svc-metrics-title">Services</h3>
    <table id="metrics-services" aria-labelledby="svc-metrics-title">
      <thead><tr><th scope="col">Service</th><th scope="col">Health</th><th scope="col" class="num">Success</th><th scope="col" class="num">RPS</th>
        <th scope="col" class="num">P50</th><th scope="col" class="num">P95</th><th scope="col" class="num">P99</th><th scope="col" class="num">TCP conns</th><th scope="col" class="num">Requests</th></tr></thead>
      <tbody>
        ${services.map((s) => html`<tr key=${s.name} data-service=${s.name} class=${`health-${health(s.successRate).kind}`}>
          <th scope="row">${s.name}</th>
          <td><${HealthBadge} rate=${s.successRate} /></td>
          <td class="num" data-col="success">${fmtSuccess(s.successRate)}</td>
          <td class="num" data-col="rps">${fmtRps(s.rps)}</td>
          <td class="num" data-col="p50">${fmtMs(s.p50)}</td>
          <td class="num" data-col="p95">${fmtMs(s.p95)}</td>
          <td class="num" data-col="p99">${fmtMs(s.p99)}</td>
          <td class="num" data-col="tcp">${s.tcpConnections}</td>
          <td class="num" data-col="requests">${s.requests}</td>
        </tr>`)}
      </tbody>
    </table>
    <h3 id="edge-metrics-title">Edges</h3>
    <table id="metrics-edges" aria-labelledby="edge-metrics-title">
      <thead><tr><th scope="col">Source → destination</th><th scope="col">Health</th><th scope="col" class="num">Success</th><th scope="col" class="num">RPS</th>
        <th scope="col" class="num">P99</th><th scope="col">mTLS</th><th scope="col">Reported by</th></tr></thead>
      <tbody>
        ${edges.map((e) => html`<tr key=${`${e.source} ${e.destination}`} data-edge=${`${e.source}->${e.destination}`} class=${`health-${health(e.successRate).kind}`}>
          <th scope="row">${e.source} <span aria-label="to">→</span> ${e.destination}</th>
          <td><${HealthBadge} rate=${e.successRate} /></td>
          <td class="num" data-col="success">${fmtSuccess(e.successRate)}</td>
          <td class="num" data-col="rps">${fmtRps(e.rps)}</td>
          <td class="num" data-col="p99">${fmtMs(e.p99)}</td>
          <td data-col="mtls">${e.mtls ? html`<span class="mtls yes" title="every request of this edge in the window went over mesh mTLS">✓ mTLS</span>` : html`<span class="mtls no" title="some or all requests were plaintext">plaintext</span>`}</td>
          <td>${e.reporter}</td>
        </tr>`)}
      </tbody>
    </table>
  </section>`;
}

function Mesh({ token, scope, onLogout }) {
  const [objects, setObjects] = useState(new Map());
  const [revision, setRevision] = useState(0);
  const [sidecars, setSidecars] = useState([]);
  const [stateLive, setStateLive] = useState('connecting');
  const [sidecarsLive, setSidecarsLive] = useState('connecting');
  const [previous, setPrevious] = useState(loadPrevious);
  const [view, setView] = useState(VIEWS.some(([v]) => `#${v}` === location.hash) ? location.hash.slice(1) : 'overview');
  const model = useRef({ map: undefined, revision: 0 });
  const writable = scope === 'write';

  useEffect(() => {
    const onHash = () => { const v = location.hash.slice(1); if (VIEWS.some(([x]) => x === v)) setView(v); };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useStream(async (signal, connected) => {
    const m = model.current;
    if (m.map === undefined) {
      const st = await api(token, 'GET', '/api/v1/state');
      m.map = new Map(st.objects.map((o) => [`${o.kind}/${o.name}`, o]));
      m.revision = st.revision;
      setObjects(new Map(m.map));
      setRevision(m.revision);
    }
    try {
      await streamEvents(`/api/v1/watch?since=${m.revision}`, token, (event, data) => {
        if (event === 'hello') { connected(); return; }
        if (event !== 'change') return;
        const e = JSON.parse(data);
        const prev = {};
        for (const c of e.changes) {
          const k = `${c.kind}/${c.name}`;
          const old = m.map.get(k);
          if (c.kind === 'route' && old !== undefined && c.object !== undefined && old.spec.backends !== c.object.spec.backends) prev[c.name] = old.spec.backends;
          if (c.type === 'delete') m.map.delete(k);
          else m.map.set(k, c.object);
        }
        m.revision = e.revision;
        if (Object.keys(prev).length > 0) {
          setPrevious((p) => {
            const next = { ...p, ...prev };
            sessionStorage.setItem(PREVIOUS_KEY, JSON.stringify(next));
            return next;
          });
        }
        setObjects(new Map(m.map));
        setRevision(m.revision);
      }, signal);
    } catch (err) {
      if (err instanceof ApiError && err.status === 410) m.map = undefined; // too far behind: list again
      throw err;
    }
  }, setStateLive, onLogout, [token]);

  useStream(async (signal, connected) => {
    await streamEvents('/api/v1/sidecars/watch', token, (event, data) => {
      if (event !== 'sidecars') return;
      connected();
      setSidecars(JSON.parse(data).sidecars);
    }, signal);
  }, setSidecarsLive, onLogout, [token]);

  const byKind = (kind) => [...objects.values()].filter((o) => o.kind === kind).sort((a, b) => (a.name < b.name ? -1 : 1));
  const services = useMemo(() => byKind('service'), [objects]);
  const routes = useMemo(() => byKind('route'), [objects]);
  const authorizations = useMemo(() => byKind('authorization'), [objects]);
  const live = stateLive === 'live' && sidecarsLive === 'live' ? 'live' : stateLive === 'live' ? sidecarsLive : stateLive;
  const go = (v) => { setView(v); history.replaceState(null, '', `#${v}`); };
  const nacked = sidecars.some((s) => s.status === 'NACKED');

  return html`<div>
    <header class="top">
      <h1>remora mesh</h1>
      <nav aria-label="Views">
        ${VIEWS.map(([v, label]) => html`<button type="button" data-view=${v} aria-current=${view === v ? 'page' : undefined} onClick=${() => go(v)}>${label}${v === 'sidecars' && nacked ? ' ⚠' : ''}</button>`)}
      </nav>
      <div class="meta">
        <span>revision <strong id="revision">${revision}</strong></span>
        <span class=${`badge ${live}`} id="live" role="status">${live === 'live' ? 'live' : live}</span>
        <span id="scope">${writable ? 'write access' : 'read-only'}</span>
        <button type="button" class="secondary" onClick=${() => onLogout()}>Log out</button>
      </div>
    </header>
    <main id="main">
      ${view === 'overview' && html`<${Overview} token=${token} onLogout=${onLogout} />`}
      ${view === 'services' && html`<${Services} services=${services} routes=${routes} />`}
      ${view === 'traffic' && html`<${Traffic} routes=${routes} token=${token} writable=${writable} previous=${previous} />`}
      ${view === 'sidecars' && html`<${Sidecars} sidecars=${sidecars} revision=${revision} />`}
      ${view === 'policies' && html`<${Policies} authorizations=${authorizations} />`}
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined); // {token, scope}
  const [message, setMessage] = useState(undefined);
  const [checking, setChecking] = useState(true);
  useEffect(() => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token === null) { setChecking(false); return; }
    api(token, 'GET', '/api/v1/whoami')
      .then((who) => { if (who.scope !== 'sidecar') setSession({ token, scope: who.scope }); })
      .catch(() => { sessionStorage.removeItem(TOKEN_KEY); })
      .finally(() => setChecking(false));
  }, []);
  if (checking) return html`<p class="boot">Checking the saved token…</p>`;
  if (session === undefined) {
    return html`<${Login} message=${message} onLogin=${(token, scope) => { sessionStorage.setItem(TOKEN_KEY, token); setMessage(undefined); setSession({ token, scope }); }} />`;
  }
  const logout = (why) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setMessage(typeof why === 'string' ? why : undefined);
    setSession(undefined);
  };
  return html`<${Mesh} key=${session.token} token=${session.token} scope=${session.scope} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById('app'));
