// Authorization policies (a virtualised table) in the order they decide (deny, allow, audit) with their decision counts over a window
// (GET /api/v1/policies/stats?window=, polled every 5 s while shown): allowed/denied where the policy decided, audited,
// and for audit policies the would-deny count.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { POLL_MS, usePoll } from '../lib/api.js';
import { VirtualTable } from '../lib/virtual-table.js';
import { WindowSelect } from './overview.js';

const count = (v) => (typeof v === 'number' ? String(v) : '–');

export function Policies({ authorizations, token, onLogout }) {
  const [win, setWin] = useState(() => sessionStorage.getItem('remora.policyWindow') ?? '5m');
  const path = `/api/v1/policies/stats?window=${encodeURIComponent(win)}`;
  const { data, path: dataPath, error, updated } = usePoll(token, path, onLogout, 'the policies\' counts');
  const stats = new Map((data?.policies ?? []).map((p) => [p.name, p]));
  const order = { deny: 0, allow: 1, audit: 2 };
  const action = (p) => p.spec.action ?? 'allow';
  const head = html`<tr><th scope="col">Policy</th><th scope="col">Action</th><th scope="col">Matches</th><th scope="col" class="num">Allowed</th><th scope="col" class="num">Denied</th>
    <th scope="col" class="num">Audited</th><th scope="col" class="num">Would deny</th><th scope="col" class="num">Version</th></tr>`;
  const sorted = [...authorizations].sort((a, b) => (order[action(a)] ?? 3) - (order[action(b)] ?? 3) || (a.name < b.name ? -1 : 1));
  return html`<section aria-labelledby="policies-title" id="policies" data-window=${data !== undefined && dataPath === path ? data.window : ''}>
    <h2 id="policies-title">Authorization policies</h2>
    <div class="toolbar">
      <${WindowSelect} id="policies-window" value=${win} onChange=${(w) => { sessionStorage.setItem('remora.policyWindow', w); setWin(w); }} />
      <span class="muted" id="policies-updated" role="status">${data === undefined ? 'counts: loading…' : `counts summed over the sidecars · updated ${updated?.toLocaleTimeString() ?? ''} · refreshed every ${POLL_MS / 1000} s`}</span>
    </div>
    ${error !== undefined && html`<p class="banner warn" role="note" id="policies-error">${error.text}</p>`}
    <p class="muted">Deny policies are tried first, then allow policies (when any exists, what matches none is denied); audit policies never change the decision. Allowed / denied: requests this policy decided in the last ${win}; audited: requests an audit policy matched; would deny: what an audit policy would have denied.</p>
    ${authorizations.length === 0 && html`<p class="muted">No authorization policies: every sidecar allows all inbound traffic.</p>`}
    <${VirtualTable} id="policies-table" label="Authorization policies" head=${head} columns=${8} rows=${sorted} renderRow=${(p) => {
      const st = stats.get(p.name);
      const matches = Object.entries(p.spec).filter(([k]) => k !== 'action').map(([k, v]) => `${k} = ${v}`).join('; ');
      return html`<tr key=${p.name} data-policy=${p.name}>
        <th scope="row">${p.name}</th>
        <td><span class=${`badge action-${action(p)}`} data-action-kind=${action(p)}>${action(p)}</span></td>
        <td title=${matches}><code>${matches}</code></td>
        <td class="num" data-col="allowed">${count(st?.allowed)}</td>
        <td class="num" data-col="denied">${count(st?.denied)}</td>
        <td class="num" data-col="audited">${count(st?.audited)}</td>
        <td class="num" data-col="would-deny">${action(p) === 'audit' ? count(st?.wouldDeny) : html`<span class="muted">n/a</span>`}</td>
        <td class="num">${p.version}</td>
      </tr>`;
    }} />
  </section>`;
}
