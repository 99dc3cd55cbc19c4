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

export function parseArgv(argv: readonly string[], specs: OptionSpecs, extraValueFlags: readonly string[] = []): ParsedArgv {
  const byFlag = new Map(Object.values(specs).map((s) => [s.flag, s]));
  const flags = new Map<string, RawFlag>();
  const issues: ConfigIssue[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') { help = true; continue; }
    if (!arg.startsWith('--') || arg === '--') {
      issues.push({ source: 'command line', key: arg, expected: 'a flag starting with "--" (see --help)' });
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byFlag.get(name);
    const isExtra = extraValueFlags.includes(name);
    if (spec === undefined && !isExtra && !COMMON_SWITCHES.has(name)) {
      issues.push({ source: 'command line', key: `--${name}`, expected: 'a known flag (see --help)' });
      if (eq < 0 && i + 1 < argv.length && !(argv[i + 1] ?? '').startsWith('--')) i++;
      continue;
    }
    if (flags.has(name)) {
      issues.push({ source: 'command line', key: `--${name}`, expected: 'each flag once' });
    }
    if (spec?.isSwitch === true) {
      flags.set(name, { value: eq < 0 ? 'true' : arg.slice(eq + 1) });
      continue;
    }
    if (eq >= 0) {
      flags.set(name, { value: arg.slice(eq + 1) });
    } else if (i + 1 < argv.length) {
      flags.set(name, { value: argv[++i] ?? '' });
    } else {
      issues.push({ source: 'command line', key: `--${name}`, expected: `a value after --${name}` });
    }
  }
  return { flags, help, issues };
}
