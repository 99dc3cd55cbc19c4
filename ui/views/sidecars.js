// Sidecars (from the stream GET /api/v1/sidecars/watch), in a virtualised table: sync state (NACK errors printed in
// full under the table, never hidden), readiness,
// the workload certificate's identity and expiry and the earliest trust-bundle root expiry, with what expires within
// 7 days or has expired highlighted in words and colour.
import { html } from '../lib/html.js';
import { expiry } from '../lib/format.js';
import { VirtualTable } from '../lib/virtual-table.js';

/** NACK errors printed in full at most (the sidecars still NACKed first). */
const MAX_NACKS_SHOWN = 50;

/** The earliest expiry a sidecar carries (certificate or root): {kind, what} for the banner. */
function worstExpiry(s, now) {
  const cert = expiry(s.certificate?.notAfter, now);
  const root = expiry(s.rootsNotAfter?.[0], now);
  const rank = { expired: 0, soon: 1, ok: 2, none: 3 };
  return rank[cert.kind] <= rank[root.kind] ? { kind: cert.kind, what: 'certificate' } : { kind: root.kind, what: 'root' };
}

function Expiry({ iso, col, now }) {
  const x = expiry(iso, now);
  return html`<span class=${`expiry ${x.kind}`} data-col=${col} data-expiry=${x.kind} title=${x.at === '' ? '' : `at ${x.at}`}>${x.kind === 'expired' || x.kind === 'soon' ? html`<strong>${x.text}</strong>` : x.text}</span>`;
}

/** At most 10 names, then "and N more" (a banner stays short at 1,000 sidecars). */
function few(names) {
  return names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')} and ${names.length - 10} more`;
}

function Ready({ ready }) {
  if (ready === true) return html`<span class="badge health-ok" data-ready="yes">ready</span>`;
  if (ready === false) return html`<span class="badge health-bad" data-ready="no">NOT READY</span>`;
  return html`<span class="badge health-idle" data-ready="unknown">not reported</span>`;
}

export function Sidecars({ sidecars, revision }) {
  const now = Date.now();
  const nacked = sidecars.filter((s) => s.status === 'NACKED');
  const expiring = sidecars.map((s) => ({ s, w: worstExpiry(s, now) })).filter((x) => x.w.kind === 'expired' || x.w.kind === 'soon');
  const notReady = sidecars.filter((s) => s.ready === false);
  const withNack = sidecars.filter((s) => s.lastNackError !== undefined).sort((a, b) => (a.status === 'NACKED' ? 0 : 1) - (b.status === 'NACKED' ? 0 : 1));
  const head = html`<tr><th scope="col">Sidecar</th><th scope="col">Identity</th><th scope="col">Status</th><th scope="col">Ready</th><th scope="col" title="connected to this replica now">Online</th><th scope="col" class="num" title="version sent">Sent</th><th scope="col" class="num" title="version applied">Applied</th>
    <th scope="col">Cert. expires</th><th scope="col" title="the earliest expiry of the trust bundle's roots">Root expires</th><th scope="col">Last seen</th></tr>`;
  return html`<section aria-labelledby="sidecars-title">
    <h2 id="sidecars-title">Sidecars <span class="muted count">(${sidecars.length})</span></h2>
    ${nacked.length > 0 && html`<p class="banner error" role="alert" id="nack-alert">${nacked.length} sidecar${nacked.length === 1 ? '' : 's'} refused (NACKed) the config: ${few(nacked.map((s) => s.name))}. They keep serving their last good config.</p>`}
    ${expiring.length > 0 && html`<p class="banner warn" role="alert" id="expiry-alert">${expiring.length} sidecar${expiring.length === 1 ? ' has' : 's have'} a certificate or root that expires within 7 days or has expired: ${few(expiring.map((x) => `${x.s.name} (${x.w.what} ${x.w.kind === 'expired' ? 'expired' : 'expires soon'})`))}.</p>`}
    ${notReady.length > 0 && html`<p class="banner warn" role="note" id="not-ready-note">${notReady.length} sidecar${notReady.length === 1 ? ' is' : 's are'} not ready: ${few(notReady.map((s) => s.name))}.</p>`}
    <p class="muted">Desired state revision ${revision}. SYNCED: applied the last version sent; STALE: sent, not applied yet; NACKED: the last version sent was refused. Sent / applied: the config versions. Ready: the sidecar's own /ready verdict, reported every 5 s with its certificate and roots (hover an expiry for its date).</p>
    ${sidecars.length === 0 && html`<p class="muted">No sidecar has subscribed.</p>`}
    <${VirtualTable} id="sidecars-table" label="Sidecars" head=${head} columns=${10} rows=${sidecars} renderRow=${(s) => html`
      <tr key=${`${s.name} ${s.identity}`} data-sidecar=${s.name}>
        <th scope="row">${s.name}</th>
        <td title=${s.certificate == null ? '' : `serial ${s.certificate.serial}`}><code data-col="identity">${s.certificate?.identity ?? (s.identity === '' ? '(none)' : s.identity)}</code></td>
        <td><span class=${`badge ${s.status.replace(' ', '_')}`} data-status=${s.status}>${s.status}</span></td>
        <td><${Ready} ready=${s.ready} /></td>
        <td>${s.connected ? 'yes' : 'no'}</td>
        <td class="num">${s.versionSent}</td>
        <td class="num">${s.versionApplied}</td>
        <td>${s.certificate === undefined ? html`<span class="muted" data-col="cert-expiry">not reported</span>` : s.certificate === null ? html`<span class="muted" data-col="cert-expiry">no certificate</span>` : html`<${Expiry} iso=${s.certificate.notAfter} col="cert-expiry" now=${now} />`}</td>
        <td>${s.rootsNotAfter === undefined || s.rootsNotAfter.length === 0 ? html`<span class="muted" data-col="root-expiry">${s.rootsNotAfter === undefined ? 'not reported' : 'no roots'}</span>` : html`<${Expiry} iso=${s.rootsNotAfter[0]} col="root-expiry" now=${now} />`}</td>
        <td title=${s.statusAt == null ? 'no status report yet' : `last status report ${new Date(s.statusAt).toLocaleTimeString()}`}>${new Date(s.lastSeen).toLocaleTimeString([], { hour12: false })}</td>
      </tr>`} />
    ${withNack.length > 0 && html`<h3 id="nacks-title">NACK errors <span class="muted count">(${withNack.length})</span></h3>
    <table id="nacks-table" aria-labelledby="nacks-title">
      <tbody>
        ${withNack.slice(0, MAX_NACKS_SHOWN).map((s) => html`<tr key=${`${s.name} ${s.identity}`} class="nack-row" data-nack=${s.name}><td><strong>${s.name}: NACK of version ${s.lastNackVersion}${s.status === 'NACKED' ? '' : ' (since superseded)'}:</strong><pre class="nack">${s.lastNackError}</pre></td></tr>`)}
      </tbody>
    </table>
    ${withNack.length > MAX_NACKS_SHOWN && html`<p class="muted">and ${withNack.length - MAX_NACKS_SHOWN} more (remora ctl sidecars -o json lists them all).</p>`}`}
  </section>`;
}
