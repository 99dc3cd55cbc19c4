// Options of `remora wait-ready` (flags and environment only: it runs in the application's container, usually
// without the proxy's config file).
import type { HostPort } from '../core/addr.js';
import type { OptionSpec } from './option-set.js';
import * as v from './value-parsers.js';

const spec = <T>(s: OptionSpec<T>): OptionSpec<T> => s;

export const waitReadyOptionSpecs = {
  adminAddress: spec({
    key: 'admin_address', flag: 'admin-address', env: 'REMORA_ADMIN_ADDRESS', valueName: 'HOST:PORT',
    help: 'the local sidecar\'s admin listener (its [proxy] admin_address)',
    defaultValue: { host: '127.0.0.1', port: 15000 } as HostPort, defaultText: '127.0.0.1:15000', parse: v.hostPort,
  }),
  timeout: spec({
    key: 'timeout', flag: 'timeout', env: 'REMORA_WAIT_READY_TIMEOUT', valueName: 'DURATION',
    help: 'give up after this long (exit code 1, REMORA_ERR_NOT_READY, with the last answer of /ready)',
    defaultValue: 60_000, defaultText: '60s', parse: v.duration(0, 24 * 3_600_000),
  }),
  interval: spec({
    key: 'interval', flag: 'interval', env: 'REMORA_WAIT_READY_INTERVAL', valueName: 'DURATION',
    help: 'pause between two GET /ready',
    defaultValue: 250, defaultText: '250ms', parse: v.duration(10, 60_000),
  }),
} as const;
