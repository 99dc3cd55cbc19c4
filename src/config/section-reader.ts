// Reads the keys of one INI section that is not an OptionSet (service definitions, [registry]): every key is
// parsed with a value parser, every problem becomes a ConfigIssue naming file:line, section and key, and keys that
// are not declared are reported. Used by service-registry.ts and tls-settings.ts.
import type { ConfigIssue } from './config-issue.js';
import { qualify, type IniEntry, type IniSection } from './ini-file.js';
import type { ValueParser } from './value-parsers.js';

export class SectionReader {
  readonly file: string;
  readonly section: IniSection;
  readonly #issues: ConfigIssue[];
  readonly #known: readonly string[];

  constructor(file: string, section: IniSection, knownKeys: readonly string[], issues: ConfigIssue[]) {
    this.file = file;
    this.section = section;
    this.#known = knownKeys;
    this.#issues = issues;
  }

  has(key: string): boolean {
    return this.section.entries.has(key);
  }

  entry(key: string): IniEntry | undefined {
    return this.section.entries.get(key);
  }

  /** "file:line" of a key, or of the section header when the key is absent. */
  where(key?: string): string {
    const e = key === undefined ? undefined : this.section.entries.get(key);
    return `${this.file}:${e?.line ?? this.section.line}`;
  }

  /** The value of a key, or undefined when it is absent or invalid (then an issue has been recorded). */
  optional<T>(key: string, parse: ValueParser<T>): T | undefined {
    const e = this.section.entries.get(key);
    if (e === undefined) return undefined;
    const r = parse(e.value);
    if (r.ok) return r.value;
    this.#issues.push({ source: `${this.file}:${e.line}`, key: qualify(this.section.name, key), value: e.value, expected: r.expected });
    return undefined;
  }

  /** The value of a key, or `fallback` when it is absent or invalid (then an issue has been recorded). */
  get<T>(key: string, parse: ValueParser<T>, fallback: T): T {
    return this.optional(key, parse) ?? fallback;
  }

  /**
   * Record an issue at a key's line (or at the section header when `key` is undefined or absent). The issue's key is
   * the qualified key ("[service web] endpoints"), or the section ("[service web]").
   */
  issue(key: string | undefined, expected: string, withValue = true): void {
    const e = key === undefined ? undefined : this.section.entries.get(key);
    const value = withValue && e !== undefined ? e.value : undefined;
    this.#issues.push({
      source: this.where(key),
      key: key === undefined ? `[${this.section.name}]` : qualify(this.section.name, key),
      ...(value === undefined ? {} : { value }),
      expected,
    });
  }

  /** Report every key that is not one of the known keys. */
  reportUnknownKeys(what: string): void {
    for (const e of this.section.entries.values()) {
      if (!this.#known.includes(e.key)) {
        this.#issues.push({
          source: `${this.file}:${e.line}`,
          key: qualify(this.section.name, e.key),
          expected: `a key of ${what} (${this.#known.join(', ')})`,
        });
      }
    }
  }
}
