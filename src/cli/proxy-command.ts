// `remora proxy`: flags/env/file -> validated options -> a running proxy.
import { availableParallelism } from 'node:os';
import { configError } from '../config/config-issue.js';
import { CONFIG_ENV, CONFIG_FLAG } from '../config/load-options.js';
import { loadSnapshotDefinitions, type SnapshotInput } from '../config/load-snapshot.js';
import { renderOptionHelp } from '../config/option-set.js';
import { proxyOptionSpecs } from '../config/proxy-options.js';
import { startIdleHeapTrim } from '../core/idle-heap-trim.js';
import { createLogger } from '../core/log.js';
import { startProxy } from '../proxy/proxy.js';
import { parseArgv } from './argv.js';
import type { SyncedProxy } from './proxy-control.js';
import { proxyControlOptions } from './proxy-control-options.js';

const HELP = `Usage: remora proxy [flags]

Runs the sidecar: accepts connections redirected by "remora init" on the outbound and inbound
listeners, recovers each original destination and forwards the bytes. An admin listener serves
/ready, /stats and /config_dump; /ready is 200 only while redirect probes prove that the rules
still send traffic here. SIGHUP (or a change of the config file) reloads the configuration; a config
with a problem is refused and the last good one keeps serving. SIGTERM (or POST /quitquitquit from
loopback) drains: /ready fails at once, inbound answers every request it read with Connection: close
or GOAWAY and keeps accepting for the drain grace, outbound is served as usual; the proxy exits once
nothing is open, at the latest at the drain timeout. POST /drain drains without exiting.

Flags:
  --${CONFIG_FLAG} FILE${' '.repeat(23)}INI file whose [proxy] section holds these options
${' '.repeat(36)}env ${CONFIG_ENV}

The control plane (--control, --token, --control-ca-file, --spiffe-id) is among the options below
([proxy] control, control_token, control_ca_file, spiffe_id).
`;

export async function runProxyCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  // A worker of `workers` > 1 (forked by the primary with REMORA_WORKER and an IPC channel): the primary owns the
  // configuration and hands it over; the worker reads no file.
  if (env.REMORA_WORKER !== undefined && process.send !== undefined) {
    await (await import('../proxy/workers/worker.js')).runWorker();
    return;
  }
  const parsed = parseArgv(argv, proxyOptionSpecs, [CONFIG_FLAG]);
  if (parsed.help) {
    process.stdout.write(`${HELP}${renderOptionHelp(proxyOptionSpecs)}\n`);
    return;
  }
  // One validator for the whole file, the environment and the flags: every problem is reported in one error, in file
  // order, and nothing starts. Reloads run the same validator (with the same flags and environment).
  const file = parsed.flags.get(CONFIG_FLAG)?.value ?? env[CONFIG_ENV];
  const input: SnapshotInput = { file: file === '' ? undefined : file, flags: parsed.flags, env };
  const control = proxyControlOptions(input);
  // The control plane's client, sync and CSR code (and their dependencies) are loaded only when it is configured.
  const pc = control?.ok === true ? await import('./proxy-control.js') : undefined;
  // --spiffe-id: the identity files come from the control plane (CSR), before they are checked.
  const channel = control?.ok === true ? pc?.controlChannel(control.options) : undefined;
  const renewer = control?.ok === true && channel !== undefined ? await pc?.bootstrapIdentity(input, control.options, channel) : undefined;
  const load = loadSnapshotDefinitions({ ...input, preIssues: [...parsed.issues, ...(control?.ok === false ? control.issues : [])] });
  if (!load.ok) throw configError(load.issues);
  const controlled = control?.ok === true && pc !== undefined ? new pc.ControlledConfig(input) : undefined;
  const log = createLogger({ level: load.definitions.proxy.logLevel, name: 'remora-proxy' });
  for (const warning of load.warnings) log.warn({ event: 'config.warning', warning }, warning);
  const reload = (): ReturnType<typeof loadSnapshotDefinitions> => (controlled === undefined ? loadSnapshotDefinitions(input) : controlled.load());
  const requested = load.definitions.proxy.workers;
  const workers = requested === 0 ? availableParallelism() : requested;
  let proxy: { readonly stopped: Promise<void> };
  let synced: SyncedProxy | undefined;
  if (workers > 1) {
    // N processes sharing the listeners: this one is the primary (src/proxy/workers/primary.ts).
    const { startPrimary } = await import('../proxy/workers/primary.js');
    const primary = await startPrimary({ log, definitions: load.definitions, workers, configFile: input.file, reload });
    proxy = primary;
    synced = primary;
  } else {
    const single = await startProxy({ log, definitions: load.definitions, configFile: input.file, reload });
    proxy = single;
    synced = pc?.syncedProxy(single);
  }
  // Memory back to the system once just after the start, and after each busy period once the process is quiet.
  const trim = startIdleHeapTrim(log);
  void proxy.stopped.then(() => { trim.stop(); });
  // Renewals then travel on the sync connection (the channel the snapshots come on) whenever it is up.
  if (controlled !== undefined && control?.ok === true && pc !== undefined && synced !== undefined) {
    channel?.attach(pc.startControlSync(synced, control.options, controlled, log));
  }
  if (renewer !== undefined) {
    renewer.start();
    void proxy.stopped.then(() => { renewer.stop(); });
  }
}
