// Command-line parsing against a declared option set: "--flag value", "--flag=value", switches, "--help".
import type { ConfigIssue } from '../config/config-issue.js';
import type { OptionSpecs, RawFlag } from '../config/option-set.js';

export interface ParsedArgv {
  readonly flags: Map<string, RawFlag>;
  readonly help: boolean;
  readonly issues: ConfigIssue[];
}

/** Flags every command accepts besides its option set. */
const COMMON_SWITCHES = new Set(['help']);

/** How a flag is written: with a value ("--flag value", "--flag=value") or as a switch ("--flag"). */
export type FlagKind = 'value' | 'switch';

export interface CollectedArgv {
  /** Every value given per flag, in order (a switch: "true", or the VALUE of "--switch=VALUE"). */
  readonly values: Map<string, string[]>;
  readonly help: boolean;
  readonly issues: ConfigIssue[];
}

/**
 * The words of a command line as flags; an unknown flag, a stray word, a missing value or a flag given twice (unless
 * `repeatable`) is an issue, in the order met.
 */
export function collectArgv(
  argv: readonly string[], kindOf: (name: string) => FlagKind | undefined, repeatable: (name: string) => boolean = () => false,
): CollectedArgv {
  const values = new Map<string, string[]>();
  const issues: ConfigIssue[] = [];
  let help = false;
  const add = (name: string, value: string): void => {
    const list = values.get(name);
    if (list === undefined) values.set(name, [value]);
    else list.push(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') { help = true; continue; }
    if (!arg.startsWith('--') || arg === '--') {
      issues.push({ source: 'command line', key: arg, expected: 'a flag starting with "--" (see --help)' });
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const kind = kindOf(name);
    if (kind === undefined) {
      issues.push({ source: 'command line', key: `--${name}`, expected: 'a known flag (see --help)' });
      if (eq < 0 && i + 1 < argv.length && !(argv[i + 1] ?? '').startsWith('--')) i++;
      continue;
    }
    if (values.has(name) && !repeatable(name)) issues.push({ source: 'command line', key: `--${name}`, expected: 'each flag once' });
    if (kind === 'switch') add(name, eq < 0 ? 'true' : arg.slice(eq + 1));
    else if (eq >= 0) add(name, arg.slice(eq + 1));
    else if (i + 1 < argv.length) add(name, argv[++i] ?? '');
    else issues.push({ source: 'command line', key: `--${name}`, expected: `a value after --${name}` });
  }
  return { values, help, issues };
}

export function parseArgv(argv: readonly string[], specs: OptionSpecs, extraValueFlags: readonly string[] = []): ParsedArgv {
  const byFlag = new Map(Object.values(specs).map((s) => [s.flag, s]));
  const collected = collectArgv(argv, (name) => {
    const spec = byFlag.get(name);
    if (spec !== undefined) return spec.isSwitch === true ? 'switch' : 'value';
    if (extraValueFlags.includes(name) || COMMON_SWITCHES.has(name)) return 'value';
    return undefined;
  });
  const flags = new Map<string, RawFlag>();
  const issues = [...collected.issues];
  for (const [name, values] of collected.values) flags.set(name, { value: values[values.length - 1] ?? '' });
  return { flags, help: collected.help, issues };
}
