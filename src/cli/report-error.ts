// Exit codes and how a command's error becomes a message and an exit code. Apart from main.ts so that the entry of
// the proxy's bundle (proxy-main.ts) shares it without pulling in every other command.
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
import { RemoraError } from '../core/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function reportError(command: string, err: unknown): number {
  if (err instanceof RemoraError) {
    process.stderr.write(`remora ${command}: ${err.code}: ${err.message}\n`);
    return err.code === 'REMORA_ERR_CONFIG_INVALID' || err.code === 'REMORA_ERR_USAGE' || err.code === 'REMORA_ERR_CONFIG_READ'
      ? EXIT_USAGE : EXIT_FAILURE;
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`remora ${command}: REMORA_ERR_INTERNAL: ${message}\n`);
  return EXIT_FAILURE;
}
