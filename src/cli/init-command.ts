// `remora init`: flags/env/file -> validated options -> the interceptor's init runner.
import { initOptionSpecs } from '../config/init-options.js';
import { CONFIG_ENV, CONFIG_FLAG, loadOptions } from '../config/load-options.js';
import { renderOptionHelp } from '../config/option-set.js';
import { createLogger } from '../core/log.js';
import { runInit } from '../interceptor/init-runner.js';
import { parseArgv } from './argv.js';

const HELP = `Usage: remora init [flags]

Writes iptables rules in the current network namespace so that inbound and outbound TCP goes
to the remora proxy, except the proxy's own traffic (uid/gid), excluded ports and CIDRs.
Atomic per address family, idempotent, verified after applying. Needs CAP_NET_ADMIN
(and CAP_NET_RAW) unless --dry-run is given.

Flags:
  --${CONFIG_FLAG} FILE${' '.repeat(23)}INI file whose [init] section holds these options
${' '.repeat(36)}env ${CONFIG_ENV}
`;

export async function runInitCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseArgv(argv, initOptionSpecs, [CONFIG_FLAG]);
  if (parsed.help) {
    process.stdout.write(`${HELP}${renderOptionHelp(initOptionSpecs)}\n`);
    return 0;
  }
  const options = loadOptions(initOptionSpecs, 'init', parsed.flags, env, parsed.issues);
  const log = createLogger({ level: options.values.logLevel, name: 'remora-init', fd: 2 });
  return runInit(options.values, { log, out: (text) => process.stdout.write(text) });
}
