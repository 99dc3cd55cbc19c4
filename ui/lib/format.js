// Numbers and health as the views print them: health is always text (the colour is a second cue, never the only one).
import { html } from './html.js';

/** Health by success rate (a fraction): text and a class. */
export function health(successRate) {
  if (successRate === null || successRate === undefined) return { kind: 'idle', text: 'no requests' };
  if (successRate >= 0.99) return { kind: 'ok', text: 'healthy' };
  if (successRate >= 0.95) return { kind: 'warn', text: 'degraded' };
  return { kind: 'bad', text: 'failing' };
}

export const fmtSuccess = (v) => (v === null || v === undefined ? '–' : `${(Math.round(v * 1000) / 10).toFixed(1)}%`);
export const fmtRps = (v) => (typeof v !== 'number' ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v > 0 && v < 0.01 ? '<0.01' : v.toFixed(2));
export const fmtNum = (v) => (v === null || v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
export const fmtMs = (v) => (v === null || v === undefined ? '–' : `${fmtNum(v)} ms`);

export function HealthBadge({ rate }) {
  const hl = health(rate);
  return html`<span class=${`badge health-${hl.kind}`} data-health=${hl.kind}>${hl.text}</span>`;
}

const DAY = 86_400_000;
export const EXPIRY_WARN_MS = 7 * DAY;

function span(ms) {
  const a = Math.abs(ms);
  if (a >= 10 * DAY) return `${Math.floor(a / DAY)} days`;
  if (a >= 2 * DAY) return `${(a / DAY).toFixed(1)} days`;
  if (a >= 2 * 3_600_000) return `${Math.floor(a / 3_600_000)} h`;
  return `${Math.max(1, Math.floor(a / 60_000))} min`;
}

/** An expiry (ISO-8601) against now: {kind: ok|soon|expired|none, text, at (the date, UTC)}. soon = within 7 days. */
export function expiry(iso, now = Date.now()) {
  if (typeof iso !== 'string' || iso === '') return { kind: 'none', text: 'not reported', at: '' };
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return { kind: 'none', text: `unreadable (${iso})`, at: '' };
  const left = t - now;
  const at = new Date(t).toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, 'Z');
  if (left <= 0) return { kind: 'expired', text: `EXPIRED ${span(left)} ago`, at };
  if (left <= EXPIRY_WARN_MS) return { kind: 'soon', text: `expires in ${span(left)}`, at };
  return { kind: 'ok', text: `in ${span(left)}`, at };
}
