// A line-aware INI reader. Values are decoded with the `ini` package's own rules (quotes, escapes, inline
// comments), but unlike ini.parse() every section and key keeps its line number, so that every configuration
// error can name the file, line, section and key.
import { readFileSync } from 'node:fs';
import ini from 'ini';
import { RemoraError } from '../core/errors.js';
import type { ConfigIssue } from './config-issue.js';

export interface IniEntry {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

export interface IniSection {
  /** The header text between the brackets, trimmed ("proxy", "service web"). "" for keys before any header. */
  readonly name: string;
  readonly line: number;
  readonly entries: ReadonlyMap<string, IniEntry>;
}

export interface IniDocument {
  readonly file: string;
  readonly sections: readonly IniSection[];
}

const SECTION_RE = /^\[([^\]]*)\]\s*(?:[;#].*)?$/;
const KEY_RE = /^[A-Za-z0-9_.-]+$/;

/** Parse INI text; structural problems are returned as issues, never thrown. */
export function parseIni(text: string, file: string): { doc: IniDocument; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const sections: { name: string; line: number; entries: Map<string, IniEntry> }[] = [];
  let current: { name: string; line: number; entries: Map<string, IniEntry> } = { name: '', line: 0, entries: new Map() };
  sections.push(current);
  const seenSections = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    if (t === '' || t.startsWith(';') || t.startsWith('#')) return;
    const sm = SECTION_RE.exec(t);
    if (sm !== null) {
      const name = (sm[1] ?? '').trim().replace(/\s+/g, ' ');
      const prior = seenSections.get(name);
      if (name === '') {
        issues.push({ source: `${file}:${line}`, key: '[]', expected: 'a section name between the brackets' });
      } else if (prior !== undefined) {
        issues.push({ source: `${file}:${line}`, key: `[${name}]`, expected: `each section once (already at line ${prior})` });
      }
      seenSections.set(name, line);
      current = { name, line, entries: new Map() };
      sections.push(current);
      return;
    }
    const eq = t.indexOf('=');
    if (eq <= 0) {
      issues.push({ source: `${file}:${line}`, key: t.slice(0, 40), expected: '"key = value", "[section]" or a comment' });
      return;
    }
    const key = t.slice(0, eq).trim();
    if (!KEY_RE.test(key)) {
      issues.push({ source: `${file}:${line}`, key, expected: 'a key of letters, digits, "_", "-" or "."' });
      return;
    }
    const value = ini.unsafe(t.slice(eq + 1).trim());
    const prior = current.entries.get(key);
    if (prior !== undefined) {
      issues.push({
        source: `${file}:${line}`,
        key: qualify(current.name, key),
        expected: `each key once per section (already set at line ${prior.line})`,
      });
      return;
    }
    current.entries.set(key, { key, value, line });
  });
  return { doc: { file, sections }, issues };
}

export function readIniFile(file: string): { doc: IniDocument; issues: ConfigIssue[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'EIO';
    throw new RemoraError('REMORA_ERR_CONFIG_READ', `cannot read configuration file ${file}: ${code}`, { cause: err });
  }
  return parseIni(text, file);
}

export function findSection(doc: IniDocument, name: string): IniSection | undefined {
  return doc.sections.find((s) => s.name === name);
}

export function qualify(section: string, key: string): string {
  return section === '' ? key : `[${section}] ${key}`;
}
