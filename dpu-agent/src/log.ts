import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export interface LogOptions {
  level?: string;
  /** Where to write; defaults to stdout (fd 1). Tests pass a stream to assert on lines. */
  destination?: DestinationStream;
}

/**
 * The agent's root logger: JSON lines, one `component` per child. Serializers are
 * allow-lists: errors keep type/code/message/stack, never payloads or key material.
 */
export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { pid: process.pid, service: 'dpu-agent' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: serializeError },
    formatters: { level: (label) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out['code'] = code;
  if (err.stack) out['stack'] = err.stack;
  if (err.cause !== undefined) out['cause'] = serializeError(err.cause);
  return out;
}

/** A logger that drops everything: for library code used without a logger (tests, bench). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
