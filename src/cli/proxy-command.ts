// `remora proxy`: flags/env/file -> validated options -> a running proxy.
import type { ConfigIssue } from '../config/config-issue.js';
import { configError } from '../config/config-issue.js';
import { readIniFile } from '../config/ini-file.js';
import { CONFIG_ENV, CONFIG_FLAG, loadOptions } from '../config/load-options.js';
import { renderOptionHelp } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { createLogger } from '../core/log.js';
import { RemoraError } from '../core/errors.js';
import { loadServiceConfig, sortIssues, type ProxyServiceConfig } from '../proxy/proxy-config.js';
import { startProxy } from '../proxy/proxy.js';
import { parseArgv } from './argv.js';

const HELP = `Usage: remora proxy [flags]

Runs the sidecar: accepts connections redirected by "remora init" on the outbound and inbound
listeners, recovers each original destination and forwards the bytes. An admin listener serves
/ready and /stats. SIGTERM stops accepting and lets open connections finish until the drain timeout.

Flags:
  --${CONFIG_FLAG} FILE${' '.repeat(23)}INI file whose [proxy] section holds these options
${' '.repeat(36)}env ${CONFIG_ENV}
`;

export async function runProxyCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const parsed = parseArgv(argv, proxyOptionSpecs, [CONFIG_FLAG]);
  if (parsed.help) {
    process.stdout.write(`${HELP}${renderOptionHelp(proxyOptionSpecs)}\n`);
    return;
  }
  // The services of the file ([registry], [service NAME], and the L7 sections) are checked along with [proxy]: every
  // problem of the file is reported in one error, in file order, and nothing starts.
  const configFile = parsed.flags.get(CONFIG_FLAG)?.value ?? env[CONFIG_ENV];
  let services: ProxyServiceConfig | undefined;
  let serviceIssues: readonly ConfigIssue[] = [];
  if (configFile !== undefined && configFile !== '') {
    try {
      services = loadServiceConfig(readIniFile(configFile).doc);
    } catch (err) {
      // An unreadable file is reported by loadOptions below (REMORA_ERR_CONFIG_READ).
      if (!(err instanceof RemoraError) || (err.code !== 'REMORA_ERR_CONFIG_INVALID' && err.code !== 'REMORA_ERR_CONFIG_READ')) throw err;
      if (err.code === 'REMORA_ERR_CONFIG_INVALID') serviceIssues = issuesOf(err);
    }
  }
  let options;
  try {
    options = loadOptions(proxyOptionSpecs, 'proxy', parsed.flags, env, parsed.issues);
  } catch (err) {
    if (err instanceof RemoraError && err.code === 'REMORA_ERR_CONFIG_INVALID' && serviceIssues.length > 0) {
      throw configError(sortIssues([...issuesOf(err), ...serviceIssues]));
    }
    throw err;
  }
  if (serviceIssues.length > 0) throw configError(serviceIssues);
  const log = createLogger({ level: options.values.logLevel, name: 'remora-proxy' });
  await startProxy(options.values, { log, document: options.document, configFile: options.configFile, services });
}

function issuesOf(err: RemoraError): readonly ConfigIssue[] {
  const issues = err.details?.['issues'];
  return Array.isArray(issues) ? (issues as ConfigIssue[]) : [];
}
