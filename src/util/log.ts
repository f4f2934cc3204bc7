/**
 * Structured logs: one line per event with level, time, component and message; quiet by default
 * (warnings and errors only), `--verbose` adds info and debug.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(component: string, message: string): void;
  info(component: string, message: string): void;
  warn(component: string, message: string): void;
  error(component: string, message: string): void;
}

export function createLogger(minLevel: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const emit = (level: LogLevel) => (component: string, message: string): void => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(`${new Date().toISOString()} ${level.padEnd(5)} [${component}] ${message}`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = createLogger('error', () => undefined);
