/**
 * serene's {@link Logger} contract on pino: JSON lines on stdout (the default, for log collectors),
 * or one readable line per record (`LOG_FORMAT=pretty`).
 */
import type { Logger, LogLevel, LogMeta } from '@serene/core';
import { type DestinationStream, pino } from 'pino';

/** A logger of the host, with a way to flush what it buffered before the process exits. */
export interface HostLogger extends Logger {
  flush(): void;
}

/** Options of {@link createHostLogger}. */
export interface HostLoggerOptions {
  level: LogLevel;
  format: 'json' | 'pretty';
  /** @default stdout */
  destination?: DestinationStream;
}

function adapt(logger: pino.Logger): HostLogger {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: LogMeta): void => {
      if (meta && Object.keys(meta).length > 0) logger[level](meta, message);
      else logger[level](message);
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (meta) => adapt(logger.child(meta)),
    flush: () => logger.flush(),
  };
}

/** A stream writing `time level message {meta}` lines. */
function prettyDestination(write: (line: string) => void): DestinationStream {
  return {
    write(line: string) {
      const record = JSON.parse(line) as Record<string, unknown>;
      const { time, level, msg, name: _name, ...meta } = record;
      const suffix = Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : '';
      write(`${String(time)} ${String(level).padEnd(5)} ${String(msg)}${suffix}\n`);
    },
  };
}

/** Creates the host's logger. */
export function createHostLogger(options: HostLoggerOptions): HostLogger {
  let destination: DestinationStream;
  if (options.format === 'pretty') {
    const target = options.destination;
    destination = prettyDestination((line) => (target ? target.write(line) : process.stdout.write(line)));
  } else {
    destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  }
  const base = pino(
    {
      level: options.level,
      base: { name: 'serene' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return adapt(base);
}
