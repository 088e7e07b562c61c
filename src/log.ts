// One JSON-lines logger for the whole plugin, on stdout: dockerd copies a
// managed plugin's stdout into its own log, tagged with the plugin id.
import winston from 'winston';

export type Logger = winston.Logger;

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LEVELS)[number];

export function createLogger(level: LogLevel = 'info'): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** libdevmapper's syslog-style level (3 error ... 7 debug) as a winston level. */
export function dmLevel(level: number): LogLevel {
  if (level <= 3) return 'error';
  if (level === 4) return 'warn';
  if (level <= 6) return 'info';
  return 'debug';
}
