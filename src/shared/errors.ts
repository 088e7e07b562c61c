// Error shapes shared by the whole plugin.

/** What the native addon rejects with: a Node-style system error. */
export interface SystemError extends Error {
  /** errno name, e.g. 'EBUSY' */
  code: string;
  /** negative errno, as Node's own system errors carry it */
  errno: number;
  /** the call that failed, e.g. 'dm_task_run(remove)' or 'ioctl(BLKGETSIZE64)' */
  syscall: string;
  /** the device name or path the call concerned */
  path?: string;
  /** libdevmapper's own last error line, when it gave one */
  detail?: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return (
    err instanceof Error &&
    typeof (err as Partial<SystemError>).code === 'string' &&
    typeof (err as Partial<SystemError>).errno === 'number'
  );
}

/** isErrno(err, 'EBUSY', 'EAGAIN') is true when err is a system error with one of the codes. */
export function isErrno(err: unknown, ...codes: string[]): err is SystemError {
  return isSystemError(err) && codes.includes(err.code);
}

/** An error of dmthin's own, with a stable code callers can test and, when it has one, the object it is about. */
export class DmthinError extends Error {
  readonly code: string;
  /** the layer id, volume name, device, setting or path the error is about */
  readonly subject: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; subject?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DmthinError';
    this.code = code;
    this.subject = options?.subject;
  }
}

/**
 * Codes that mean the request or the settings were wrong (an option, a
 * name, a size), not that something failed: nothing was changed, and
 * asking again the same way fails the same way.
 */
const BAD_INPUT_CODES: ReadonlySet<string> = new Set(['ECONFIG', 'EDMOPTION', 'EVOLOPTION', 'EINVAL', 'EINVALIDID', 'EINVALIDNAME', 'ESIZE']);

/**
 * Codes of a new device refused because of the pool's health (deviceset/
 * pool.ts checkFreeSpace): out of space or below the low-water mark,
 * read-only, needing a check, failed. Nothing was changed; asking again
 * works once the pool is grown or repaired.
 */
export const POOL_REFUSAL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EPOOLRO', 'EPOOLCHECK', 'EPOOLFAILED']);

/** Whether err refuses bad input (see BAD_INPUT_CODES) rather than reporting a failure. */
export function isBadInput(err: unknown): err is DmthinError {
  return err instanceof DmthinError && BAD_INPUT_CODES.has(err.code);
}

/** An error as the one line a user reads: the message of an Error, else its text. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
