// The composition root of the CLI: picks the command, turns errors into messages and exit codes.
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
import { createRequire } from 'node:module';
import { EXIT_USAGE, reportError } from './report-error.js';

// Exit codes and the error reporter live in report-error.ts (shared with the proxy's bundle entry, proxy-main.ts).
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, reportError } from './report-error.js';

const USAGE = `remora: a transparent service-mesh sidecar

Usage:
  remora init [flags]     write the iptables rules that redirect the pod's TCP to the proxy
  remora proxy [flags]    run the sidecar proxy
  remora ca <command>     the built-in certificate authority (init, issue, rotate-root, ...)
  remora wait-ready       wait until the local proxy is ready (for an application container's start hook)
  remora explain --dst IP:PORT [flags]
                          the path a connection or request would take and why (rules, listener,
                          protocol, service, route, endpoint, policies), from the running sidecar
  remora control [flags]  run the control plane (desired state, API, mesh CA)
  remora ctl <verb>       the control plane's CLI (get, apply, diff, delete, set-weights, ...)
  remora help             this text
  remora version          print the version

Run "remora <command> --help" for the command's flags. Every flag of init and proxy can also be set in the
environment or in the INI file given with --config (precedence: file < environment < flag).
`;

function version(): string {
  const require = createRequire(import.meta.url);
  const pkg = require('../../../package.json') as { version: string };
  return pkg.version;
}

// Each command's modules are loaded only when it runs (the proxy does not keep init's rule writer and lock in memory).
export async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'init': {
      const { runInitCommand } = await import('./init-command.js');
      process.exitCode = await runInitCommand(rest, process.env).catch((err: unknown) => reportError('init', err));
      return;
    }
    case 'ca': {
      const { runCaCommand } = await import('./ca-command.js');
      process.exitCode = await runCaCommand(rest).catch((err: unknown) => reportError('ca', err));
      return;
    }
    case 'explain': {
      const { runExplainCommand } = await import('./explain-command.js');
      process.exitCode = await runExplainCommand(rest).catch((err: unknown) => reportError('explain', err));
      return;
    }
    case 'control': {
      const { runControlCommand } = await import('./control-command.js');
      // Runs until a signal; errors at start (flags, store, CA, listener) set the exit code.
      await runControlCommand(rest).catch((err: unknown) => {
        process.exitCode = reportError('control', err);
      });
      return;
    }
    case 'ctl': {
      const { runCtlCommand } = await import('./ctl-command.js');
      process.exitCode = await runCtlCommand(rest, process.env).catch((err: unknown) => reportError('ctl', err));
      return;
    }
    case 'proxy': {
      // The same entry as the proxy's bundle (bin/remora loads dist/src/cli/proxy-bundle.cjs when it is fresh).
      const { runProxyMain } = await import('./proxy-main.js');
      await runProxyMain(rest);
      return;
    }
    case 'wait-ready': {
      const { runWaitReadyCommand } = await import('./wait-ready-command.js');
      process.exitCode = await runWaitReadyCommand(rest, process.env).catch((err: unknown) => reportError('wait-ready', err));
      return;
    }
    case 'version':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`remora: REMORA_ERR_USAGE: unknown command "${command}"\n\n${USAGE}`);
      process.exitCode = EXIT_USAGE;
  }
}
