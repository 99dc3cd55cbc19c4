// Loads a command's options: the INI file named by --config (or REMORA_CONFIG), then the environment, then flags.
// Returns every problem at once; the caller exits before touching anything when there is one.
import { configError, type ConfigIssue } from './config-issue.js';
import { findSection, readIniFile, type IniDocument } from './ini-file.js';
import { resolveOptions, type OptionSpecs, type OptionValues, type RawFlag, type ResolvedOptions } from './option-set.js';

export const CONFIG_FLAG = 'config';
export const CONFIG_ENV = 'REMORA_CONFIG';

export interface LoadedOptions<S extends OptionSpecs> extends ResolvedOptions<S> {
  readonly values: OptionValues<S>;
  readonly configFile: string | undefined;
  readonly document: IniDocument | undefined;
}

export function loadOptions<S extends OptionSpecs>(
  specs: S,
  section: string,
  flags: ReadonlyMap<string, RawFlag>,
  env: Readonly<Record<string, string | undefined>>,
  preIssues: readonly ConfigIssue[] = [],
): LoadedOptions<S> {
  const issues: ConfigIssue[] = [...preIssues];
  const configFile = flags.get(CONFIG_FLAG)?.value ?? env[CONFIG_ENV];
  let document: IniDocument | undefined;
  if (configFile !== undefined && configFile !== '') {
    const read = readIniFile(configFile); // throws REMORA_ERR_CONFIG_READ
    document = read.doc;
    issues.push(...read.issues);
    const top = read.doc.sections.find((s) => s.name === '');
    for (const e of top?.entries.values() ?? []) {
      issues.push({ source: `${configFile}:${e.line}`, key: e.key, expected: `the key inside a section such as [${section}]` });
    }
  }
  const resolved = resolveOptions(specs, {
    flags, env, section: document === undefined ? undefined : findSection(document, section), file: configFile,
  });
  issues.push(...resolved.issues);
  if (issues.length > 0) throw configError(issues);
  return { ...resolved, configFile, document };
}
