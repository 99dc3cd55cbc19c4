// The remora web UI (docs/ui.md): preact + htm, no build step; the views are modules under ui/views/, shared code
// under ui/lib/. It uses only the control plane's public API: GET /api/v1/whoami (the token's scope),
// GET /api/v1/state then the change stream GET /api/v1/watch?since=REV, the sidecars' stream
// GET /api/v1/sidecars/watch, and, polled every 5 s only while their view is shown (they have no change stream),
// GET /api/v1/metrics, /api/v1/endpoints, /api/v1/routes/split and /api/v1/policies/stats; writes are
// POST /api/v1/routes/NAME/weights with the version read.
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from './lib/html.js';
import { api, ApiError, streamEvents, useStream } from './lib/api.js';
import { loadNamespace, saveNamespace } from './lib/namespace.js';
import { Login } from './views/login.js';
import { Overview } from './views/overview.js';
import { Services } from './views/services.js';
import { Traffic } from './views/traffic.js';
import { Sidecars } from './views/sidecars.js';
import { Policies } from './views/policies.js';

const TOKEN_KEY = 'remora.token';
const PREVIOUS_KEY = 'remora.previousWeights';
const VIEWS = [['overview', 'Overview'], ['services', 'Services'], ['traffic', 'Traffic shifting'], ['sidecars', 'Sidecars'], ['policies', 'Policies']];

function loadPrevious() {
  try { return JSON.parse(sessionStorage.getItem(PREVIOUS_KEY) ?? '{}'); } catch { return {}; }
}

function Mesh({ token, scope, onLogout }) {
  const [objects, setObjects] = useState(new Map());
  const [revision, setRevision] = useState(0);
  const [sidecars, setSidecars] = useState([]);
  const [stateLive, setStateLive] = useState('connecting');
  const [sidecarsLive, setSidecarsLive] = useState('connecting');
  const [previous, setPrevious] = useState(loadPrevious);
  const [view, setView] = useState(VIEWS.some(([v]) => `#${v}` === location.hash) ? location.hash.slice(1) : 'overview');
  const [ns, setNsState] = useState(loadNamespace);
  const setNs = (v) => { saveNamespace(v); setNsState(v); };
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
      ${view === 'overview' && html`<${Overview} token=${token} onLogout=${onLogout} ns=${ns} setNs=${setNs} />`}
      ${view === 'services' && html`<${Services} services=${services} routes=${routes} token=${token} onLogout=${onLogout} ns=${ns} setNs=${setNs} />`}
      ${view === 'traffic' && html`<${Traffic} routes=${routes} token=${token} writable=${writable} previous=${previous} onLogout=${onLogout} ns=${ns} setNs=${setNs} />`}
      ${view === 'sidecars' && html`<${Sidecars} sidecars=${sidecars} revision=${revision} />`}
      ${view === 'policies' && html`<${Policies} authorizations=${authorizations} token=${token} onLogout=${onLogout} />`}
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
