/** Structured fields attached to a log line. */
export type LogMeta = Record<string, unknown>;

/** The logger contract every part of serene logs through; the host adapts it to pino. */
export interface Logger {
  error(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  debug(message: string, meta?: LogMeta): void;
  /** A logger whose lines carry `meta` in addition to their own. */
  child(meta: LogMeta): Logger;
}

/** Log levels in increasing verbosity. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger that drops everything. */
export function createNoopLogger(): Logger {
  const noop = () => {};
  const logger: Logger = { error: noop, warn: noop, info: noop, debug: noop, child: () => logger };
  return logger;
}

/** One line recorded by {@link createMemoryLogger}. */
export interface LogRecord {
  level: LogLevel;
  message: string;
  meta: LogMeta;
}

/** A logger that keeps its lines in `records`, for tests. */
export function createMemoryLogger(
  records: LogRecord[] = [],
  base: LogMeta = {},
): Logger & { records: LogRecord[] } {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: LogMeta): void => {
      records.push({ level, message, meta: { ...base, ...meta } });
    };
  return {
    records,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (meta) => createMemoryLogger(records, { ...base, ...meta }),
  };
}

/** A logger writing `level: message {meta}` lines to stderr, for command-line tools. */
export function createConsoleLogger(level: LogLevel = 'info', base: LogMeta = {}): Logger {
  const max = LOG_LEVELS.indexOf(level);
  const at =
    (lineLevel: LogLevel) =>
    (message: string, meta?: LogMeta): void => {
      if (LOG_LEVELS.indexOf(lineLevel) > max) return;
      const all = { ...base, ...meta };
      const suffix = Object.keys(all).length > 0 ? ` ${JSON.stringify(all)}` : '';
      process.stderr.write(`${lineLevel}: ${message}${suffix}\n`);
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (meta) => createConsoleLogger(level, { ...base, ...meta }),
  };
}
