// A declared set of options, each reachable as an INI key, an environment variable and a command-line flag, with
// one precedence: default < file < environment < flag. Everything is validated before a value is used; all
// problems are collected and reported together.
import type { ConfigIssue } from './config-issue.js';
import { qualify, type IniSection } from './ini-file.js';
import type { ValueParser } from './value-parsers.js';

export interface OptionSpec<T> {
  /** INI key (snake_case) inside the command's section. */
  readonly key: string;
  /** Command-line flag without the leading "--" (kebab-case). */
  readonly flag: string;
  /** Environment variable. */
  readonly env: string;
  readonly help: string;
  /** Placeholder shown in --help ("PORT", "LIST"); absent for switches. */
  readonly valueName?: string;
  readonly defaultValue: T;
  /** The default as a user would write it. */
  readonly defaultText: string;
  readonly parse: ValueParser<T>;
  /** A flag that takes no value (`--dry-run`); the value "true" is implied. */
  readonly isSwitch?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec<unknown>>>;
export type OptionValues<S extends OptionSpecs> = { -readonly [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

export type OptionSource = 'default' | 'file' | 'environment' | 'flag';

export interface RawFlag {
  readonly value: string;
}

export interface OptionInputs {
  readonly flags: ReadonlyMap<string, RawFlag>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly section?: IniSection | undefined;
  readonly file?: string | undefined;
}

export interface ResolvedOptions<S extends OptionSpecs> {
  readonly values: OptionValues<S>;
  readonly sources: Readonly<Record<keyof S, OptionSource>>;
  readonly issues: readonly ConfigIssue[];
}

export function resolveOptions<S extends OptionSpecs>(specs: S, inputs: OptionInputs): ResolvedOptions<S> {
  const issues: ConfigIssue[] = [];
  const values: Record<string, unknown> = {};
  const sources: Record<string, OptionSource> = {};
  const byKey = new Map(Object.values(specs).map((s) => [s.key, s]));

  if (inputs.section !== undefined) {
    for (const entry of inputs.section.entries.values()) {
      if (!byKey.has(entry.key)) {
        issues.push({
          source: `${inputs.file ?? 'config'}:${entry.line}`,
          key: qualify(inputs.section.name, entry.key),
          expected: `a known key of [${inputs.section.name}] (${[...byKey.keys()].join(', ')})`,
        });
      }
    }
  }

  for (const [name, spec] of Object.entries(specs)) {
    values[name] = spec.defaultValue;
    sources[name] = 'default';
    const candidates: { source: OptionSource; where: string; key: string; text: string }[] = [];
    const entry = inputs.section?.entries.get(spec.key);
    if (entry !== undefined && inputs.section !== undefined) {
      candidates.push({ source: 'file', where: `${inputs.file ?? 'config'}:${entry.line}`, key: qualify(inputs.section.name, spec.key), text: entry.value });
    }
    const envText = inputs.env[spec.env];
    if (envText !== undefined) {
      candidates.push({ source: 'environment', where: 'environment', key: spec.env, text: envText });
    }
    const flag = inputs.flags.get(spec.flag);
    if (flag !== undefined) {
      candidates.push({ source: 'flag', where: 'command line', key: `--${spec.flag}`, text: flag.value });
    }
    // Every layer is validated, not just the winning one: a bad value anywhere is a mistake worth reporting.
    for (const c of candidates) {
      const parsed = spec.parse(c.text);
      if (!parsed.ok) {
        issues.push({ source: c.where, key: c.key, value: c.text, expected: parsed.expected });
      } else {
        values[name] = parsed.value;
        sources[name] = c.source;
      }
    }
  }
  return { values: values as OptionValues<S>, sources: sources as Record<keyof S, OptionSource>, issues };
}

/** The text of `--help` for a set of options. */
export function renderOptionHelp(specs: OptionSpecs): string {
  const rows = Object.values(specs).map((s) => {
    const left = s.isSwitch === true ? `--${s.flag}` : `--${s.flag} ${s.valueName ?? 'VALUE'}`;
    const def = s.isSwitch === true ? '' : ` (default: ${s.defaultText === '' ? '""' : s.defaultText})`;
    return { left, right: `${s.help}${def}\n${' '.repeat(4)}env ${s.env}, ini key ${s.key}` };
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r.left.length)) + 2);
  return rows
    .map((r) => {
      const [first = '', second = ''] = r.right.split('\n');
      const pad = r.left.length >= width ? `\n${' '.repeat(width + 2)}` : ' '.repeat(width - r.left.length);
      return `  ${r.left}${pad}${first}\n${' '.repeat(width + 2)}${second.trim()}`;
    })
    .join('\n');
}
