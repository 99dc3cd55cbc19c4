// `remora proxy`: flags/env/file -> validated options -> a running proxy.
import { CONFIG_ENV, CONFIG_FLAG, loadOptions } from '../config/load-options.js';
import { renderOptionHelp } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { createLogger } from '../core/log.js';
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
  const options = loadOptions(proxyOptionSpecs, 'proxy', parsed.flags, env, parsed.issues);
  const log = createLogger({ level: options.values.logLevel, name: 'remora-proxy' });
  await startProxy(options.values, { log, document: options.document, configFile: options.configFile });
}
