// One logger for the whole plugin. dockerd copies a managed plugin's stdout
// into its log as information and its stderr as errors, so errors go to
// stderr and everything else to stdout. JSON lines for machines (dockerd,
// journald), readable lines on a terminal; DMTHIN_LOG_FORMAT chooses.
import { inspect } from 'node:util';
import winston from 'winston';

export type Logger = winston.Logger;

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LEVELS)[number];
export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `auto`: text when stdout is a terminal, else JSON. */
export function resolvedFormat(format: LogFormat, stdoutIsTerminal = process.stdout.isTTY === true): 'text' | 'json' {
  if (format !== 'auto') return format;
  return stdoutIsTerminal ? 'text' : 'json';
}

/** A value as it reads in a text line: bare when it has no space or quote, else JSON. */
function shownValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  try {
    return JSON.stringify(value) ?? inspect(value);
  } catch {
    return inspect(value, { depth: 2, breakLength: Infinity });
  }
}

/** `2026-01-02T03:04:05.678Z WARN  message key=value ...` */
const textLine = winston.format.printf((entry) => {
  const { level, message, timestamp, ...fields } = entry;
  const pairs = Object.entries(fields)
    .filter(([key, value]) => typeof key === 'string' && value !== undefined)
    .map(([key, value]) => `${key}=${shownValue(value)}`);
  return [String(timestamp), level.toUpperCase().padEnd(5), String(message), ...pairs].join(' ');
});

export function createLogger(level: LogLevel = 'info', format: LogFormat = 'auto'): Logger {
  const shape = resolvedFormat(format) === 'text' ? textLine : winston.format.json();
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), shape),
    transports: [new winston.transports.Console({ stderrLevels: ['error'] })],
  });
}

/** libdevmapper's syslog-style level (3 error ... 7 debug) as a winston level. */
export function dmLevel(level: number): LogLevel {
  if (level <= 3) return 'error';
  if (level === 4) return 'warn';
  if (level <= 6) return 'info';
  return 'debug';
}
