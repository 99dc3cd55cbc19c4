// The human-readable form of `remora explain`: one block per stage, in the order a connection meets them. Pure.
import { formatHostPort } from '../core/addr.js';
import type { TraceStep } from '../interceptor/rule-trace.js';
import type { ExplainReport } from './explain-command.js';

const W = 16;

function row(label: string, text: string): string {
  const [first = '', ...rest] = text.split('\n');
  return `${label.padEnd(W)}${first}\n${rest.map((l) => `${' '.repeat(W)}${l}\n`).join('')}`;
}

function counter(s: TraceStep): string {
  return `[${s.packets} connection${s.packets === 1 ? '' : 's'} so far]`;
}

export function renderExplanation(r: ExplainReport): string {
  const q = r.query;
  const request = [
    q.method === undefined && q.path === undefined && q.host === undefined && q.headers.length === 0 ? '' : ` ${q.method ?? 'GET'} ${q.path ?? '/'}`,
    q.host === undefined ? '' : ` Host: ${q.host}`,
    ...q.headers.map(([n, v]) => ` ${n}: ${v}`),
    q.uid === undefined ? '' : ` uid ${q.uid}`,
    q.src === undefined ? '' : ` from ${q.src}`,
    q.identity === undefined ? '' : ` as ${q.identity}`,
  ].join('');
  let text = `remora explain: ${q.direction} ${formatHostPort(q.dst.address, q.dst.port)}${request}\n\n`;

  const rules = r.rules;
  if (!rules.ok) {
    text += row('rules', `unknown: ${rules.error}`);
  } else {
    const v = rules.verdict;
    const head = v.kind === 'captured' ? `captured -> port ${v.port} (nat ${rules.hook})`
      : v.kind === 'not-captured' ? `NOT captured (nat ${rules.hook})` : `cannot tell (nat ${rules.hook})`;
    const via = v.kind === 'captured' && v.via !== undefined ? `\n${v.via.rule}  ${counter(v.via)}` : '';
    const decisive = v.rule === undefined ? '' : `${via}\n${v.rule.rule}  ${counter(v.rule)}`;
    text += row('rules', `${head}: ${v.reason}${decisive}`);
    const trail = rules.steps.map((s) => `${s.matched === true ? 'match' : s.matched === false ? '  -  ' : '  ?  '} ${s.chain} #${s.position}: ${s.matched === true ? s.purpose : s.why}`);
    text += row('', trail.join('\n'));
  }
  if (r.listener !== undefined) {
    text += row('listener', r.listener.name === 'unknown' ? `port ${r.listener.port} (the sidecar's listeners are unknown: see below)` : `${r.listener.name} :${r.listener.port}`);
  }
  const p = r.proxy;
  if (!p.ok) {
    text += row('proxy', `unknown: ${p.error}`);
  } else {
    text += row('config', `version ${p.configVersion} (${p.configHash.slice(0, 12)})`);
    for (const s of p.stages) {
      if (s.stage === 'listener' && r.listener !== undefined) continue;
      text += row(s.stage, `${s.decision}\n${s.reason}`);
    }
  }
  if (r.notes.length > 0) text += `\n${r.notes.map((n) => `note: ${n}\n`).join('')}`;
  return text;
}
