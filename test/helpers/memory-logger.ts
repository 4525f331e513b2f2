// A logger whose JSON lines land in an array (tests assert on what was logged).
import { createLogger, type Logger } from '../../dpu-agent/src/log.ts';

export function memoryLogger(level = 'debug'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { logger, lines };
}
