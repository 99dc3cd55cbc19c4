// The one place that builds loggers. Modules receive a Logger; none imports a global one.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };
export type LogLevel = LevelWithSilent;
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  level: LogLevel;
  name: string;
  /** 1 = stdout (the proxy), 2 = stderr (init: stdout is kept for dry-run output). */
  fd?: 1 | 2;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: opts.fd ?? 1, sync: opts.fd === 2 }),
  );
}

/** A logger that writes nothing: for tests and pure callers. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
