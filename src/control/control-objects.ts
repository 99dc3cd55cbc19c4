// The control plane's objects are the INI sections of the static configuration (docs/control-plane.md#objects):
// `[service NAME]` is the object (service, NAME), `[proxy]`'s mesh-wide keys the object (mesh, default). This module
// holds the kinds, the shape checks of one object (names, keys, values that an INI line can carry), the rendering of
// a set of objects as one INI document with a map from each line back to its object and key, and the reading of an
// INI document into objects (what `remora ctl apply -f FILE` sends). Pure: no I/O.
import ini from 'ini';
import type { ConfigIssue } from '../config/config-issue.js';
import { parseIni } from '../config/ini-file.js';
import { ROUTE_NAME_RE } from '../config/route-spec.js';

export const OBJECT_KINDS = ['mesh', 'registry', 'service', 'traffic-policy', 'route', 'authorization'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** The name of the objects of a singleton kind (mesh, registry). */
export const SINGLETON_NAME = 'default';

/**
 * [proxy] keys that mean the same on every sidecar, so the mesh object may hold them. The others (listeners, uid/gid,
 * admin_address, http_engine, identity_dir) belong to one pod: its flags, environment and file.
 */
export const MESH_KEYS: readonly string[] = [
  'connect_timeout', 'idle_timeout', 'detect_timeout', 'drain_timeout', 'mtls_mode', 'mtls_port_modes', 'inbound_delivery', 'log_level',
];

interface KindInfo {
  /** The collection's path segment under /api/v1/. */
  readonly plural: string;
  readonly singleton: boolean;
  /** The INI section header of an object of this kind (without brackets). */
  readonly section: (name: string) => string;
}

export const KINDS: Readonly<Record<ObjectKind, KindInfo>> = {
  mesh: { plural: 'mesh', singleton: true, section: () => 'proxy' },
  registry: { plural: 'registry', singleton: true, section: () => 'registry' },
  service: { plural: 'services', singleton: false, section: (n) => `service ${n}` },
  'traffic-policy': { plural: 'traffic-policies', singleton: false, section: (n) => `traffic-policy ${n}` },
  route: { plural: 'routes', singleton: false, section: (n) => `route ${n}` },
  authorization: { plural: 'authorizations', singleton: false, section: (n) => `authorization ${n}` },
};

export type ObjectSpec = Readonly<Record<string, string>>;

/** An object as stored: its keys and values as the INI file writes them, and the revision that last changed it. */
export interface ControlObject {
  readonly kind: ObjectKind;
  readonly name: string;
  readonly spec: ObjectSpec;
  readonly version: number;
}

/** A problem with an object: which object, which field (key), the value seen, what was expected. */
export interface ObjectIssue {
  readonly kind?: ObjectKind;
  readonly name?: string;
  readonly field?: string;
  readonly value?: string;
  readonly expected: string;
}

export function isObjectKind(text: string): text is ObjectKind {
  return (OBJECT_KINDS as readonly string[]).includes(text);
}

/** The kind whose collection path segment (or kind name) is `segment`. */
export function kindOfSegment(segment: string): ObjectKind | undefined {
  return OBJECT_KINDS.find((k) => KINDS[k].plural === segment || k === segment);
}

export function objectKey(kind: ObjectKind, name: string): string {
  return `${kind}/${name}`;
}

export function formatObjectIssue(i: ObjectIssue): string {
  const what = i.kind === undefined ? '' : `${i.kind}${i.name === undefined ? '' : ` ${i.name}`}`;
  const field = i.field === undefined ? '' : `${what === '' ? '' : ' '}${i.field}`;
  const value = i.value === undefined ? '' : ` = ${JSON.stringify(i.value)}`;
  const head = `${what}${field}${value}`;
  return `${head === '' ? '' : `${head}: `}expected ${i.expected}`;
}

const KEY_RE = /^[A-Za-z0-9_.-]+$/;
const MAX_VALUE = 65_536;

/** How an INI line carries `value` so that the loader reads it back verbatim (plain, else JSON-quoted), or undefined. */
export function iniValue(value: string): string | undefined {
  if (/[\r\n]/.test(value)) return undefined;
  if (ini.unsafe(value) === value && !value.startsWith('"') && !value.startsWith("'")) return value;
  const quoted = JSON.stringify(value);
  return ini.unsafe(quoted) === value ? quoted : undefined;
}

/** Shape problems of one object (name, keys, values); the validator checks what the keys mean. */
export function objectShapeIssues(kind: ObjectKind, name: string, spec: unknown): ObjectIssue[] {
  const issues: ObjectIssue[] = [];
  const at = { kind, name };
  if (KINDS[kind].singleton) {
    if (name !== SINGLETON_NAME) issues.push({ ...at, expected: `the name "${SINGLETON_NAME}" (there is one ${kind} object per mesh)` });
  } else if (!ROUTE_NAME_RE.test(name)) {
    issues.push({ ...at, expected: 'a name of 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit' });
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    issues.push({ ...at, field: 'spec', expected: 'an object of keys and string values, as the INI section writes them' });
    return issues;
  }
  for (const [key, value] of Object.entries(spec as Record<string, unknown>)) {
    if (!KEY_RE.test(key)) {
      issues.push({ ...at, field: key, expected: 'a key of letters, digits, "_", "-" or "."' });
    } else if (typeof value !== 'string') {
      issues.push({ ...at, field: key, expected: 'a string value, as the INI file writes it' });
    } else if (value.length > MAX_VALUE || iniValue(value) === undefined) {
      issues.push({ ...at, field: key, value: value.slice(0, 80), expected: `a value of one line, at most ${MAX_VALUE} characters` });
    } else if (kind === 'mesh' && !MESH_KEYS.includes(key)) {
      issues.push({ ...at, field: key, expected: `a mesh-wide [proxy] key (${MESH_KEYS.join(', ')}); per-pod keys stay with each sidecar` });
    }
  }
  return issues;
}

/** Where a line of a rendered document came from. */
export interface LineOrigin {
  readonly kind: ObjectKind;
  readonly name: string;
  /** Undefined for the section header. */
  readonly field?: string;
}

export interface RenderedState {
  readonly text: string;
  /** By line number (1-based). */
  readonly lines: ReadonlyMap<number, LineOrigin>;
}

/**
 * The objects as one INI document, in a fixed order (by kind, then name, keys in the order given), so equal states
 * render equal text. Objects must have passed objectShapeIssues (a value no line can carry throws).
 */
export function renderState(objects: Iterable<Pick<ControlObject, 'kind' | 'name' | 'spec'>>): RenderedState {
  const sorted = [...objects].sort((a, b) => OBJECT_KINDS.indexOf(a.kind) - OBJECT_KINDS.indexOf(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  const lines = new Map<number, LineOrigin>();
  for (const o of sorted) {
    if (out.length > 0) out.push('');
    out.push(`[${KINDS[o.kind].section(o.name)}]`);
    lines.set(out.length, { kind: o.kind, name: o.name });
    for (const [key, value] of Object.entries(o.spec)) {
      const text = iniValue(value);
      if (text === undefined) throw new Error(`${o.kind} ${o.name} ${key}: a value no INI line can carry`); // checked before
      out.push(`${key} = ${text}`);
      lines.set(out.length, { kind: o.kind, name: o.name, field: key });
    }
  }
  return { text: out.length === 0 ? '' : `${out.join('\n')}\n`, lines };
}

/** A validator issue (file:line of a rendered document) as an object issue. */
export function issueOfLine(issue: ConfigIssue, rendered: RenderedState, file: string): ObjectIssue {
  const m = /^(.*):(\d+)$/.exec(issue.source);
  const origin = m !== null && m[1] === file ? rendered.lines.get(Number(m[2])) : undefined;
  // The loader's cross-references ("belongs to service web at FILE:12") name the object instead of a rendered line.
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const expected = issue.expected.replace(new RegExp(`\\s?(?:at )?${escaped}:(\\d+)`, 'g'), (_all, n: string, offset: number, whole: string) => {
    const o = rendered.lines.get(Number(n));
    if (o === undefined) return ` (line ${n})`;
    return whole.slice(0, offset).endsWith(`${o.kind} ${o.name}`) ? '' : ` (${o.kind} ${o.name})`;
  });
  const base = { ...(issue.value === undefined ? {} : { value: issue.value }), expected };
  if (origin === undefined) return { ...base, field: issue.key };
  // The issue's own key names the field when it is about another key of the section (e.g. reported at the header).
  const keyMatch = /^\[[^\]]*\] (\S+)$/.exec(issue.key);
  const field = origin.field ?? keyMatch?.[1];
  return { kind: origin.kind, name: origin.name, ...(field === undefined ? {} : { field }), ...base };
}

export interface ParsedObjects {
  readonly objects: readonly Pick<ControlObject, 'kind' | 'name' | 'spec'>[];
  /** Problems: nothing should be sent. */
  readonly issues: readonly ConfigIssue[];
  /** Keys and sections that stay local (per-pod [proxy] keys, [init]): reported, not sent. */
  readonly skipped: readonly ConfigIssue[];
}

/** The objects of an INI document (the static config's sections), as `remora ctl apply -f FILE` sends them. */
export function objectsOfIni(text: string, file: string): ParsedObjects {
  const { doc, issues: parseIssues } = parseIni(text, file);
  const issues: ConfigIssue[] = [...parseIssues];
  const skipped: ConfigIssue[] = [];
  const objects: Pick<ControlObject, 'kind' | 'name' | 'spec'>[] = [];
  for (const section of doc.sections) {
    const entries = [...section.entries.values()];
    if (section.name === '') {
      for (const e of entries) issues.push({ source: `${file}:${e.line}`, key: e.key, expected: 'the key inside a section such as [service NAME]' });
      continue;
    }
    const where = `${file}:${section.line}`;
    if (section.name === 'init') {
      skipped.push({ source: where, key: '[init]', expected: 'nothing here: [init] is read by remora init in each pod, not sent' });
      continue;
    }
    let kind: ObjectKind | undefined;
    let name = SINGLETON_NAME;
    if (section.name === 'proxy') kind = 'mesh';
    else if (section.name === 'registry') kind = 'registry';
    else {
      const sp = section.name.indexOf(' ');
      const head = sp < 0 ? section.name : section.name.slice(0, sp);
      if (sp > 0 && isObjectKind(head) && !KINDS[head].singleton) {
        kind = head;
        name = section.name.slice(sp + 1);
      }
    }
    if (kind === undefined) {
      issues.push({ source: where, key: `[${section.name}]`, expected: 'a section [proxy], [registry], [service NAME], [route NAME], [traffic-policy SERVICE] or [authorization NAME]' });
      continue;
    }
    const spec: Record<string, string> = {};
    for (const e of entries) {
      if (kind === 'mesh' && !MESH_KEYS.includes(e.key)) {
        skipped.push({ source: `${file}:${e.line}`, key: `[proxy] ${e.key}`, expected: 'nothing here: a per-pod key, it stays with each sidecar (not sent)' });
        continue;
      }
      spec[e.key] = e.value;
    }
    if (kind === 'mesh' && Object.keys(spec).length === 0) continue;
    for (const i of objectShapeIssues(kind, name, spec)) issues.push({ source: where, key: `[${section.name}]${i.field === undefined ? '' : ` ${i.field}`}`, expected: i.expected });
    objects.push({ kind, name, spec });
  }
  return { objects, issues, skipped };
}
