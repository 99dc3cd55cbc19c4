// `remora proxy`: the one entry of the proxy, used by main.ts and as the entry of the proxy's single-file bundle
// (dist/src/cli/proxy-bundle.cjs, scripts/bundle-proxy.mjs), which bin/remora runs when it is fresh.
import { reportError } from './report-error.js';

export async function runProxyMain(argv: readonly string[]): Promise<void> {
  const { runProxyCommand } = await import('./proxy-command.js');
  // The proxy keeps running; it sets process.exitCode itself when it stops.
  await runProxyCommand(argv, process.env).catch((err: unknown) => {
    process.exitCode = reportError('proxy', err);
  });
}
