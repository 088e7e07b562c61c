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

/** An error of dmthin's own, with a stable code callers can test. */
export class DmthinError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DmthinError';
    this.code = code;
  }
}
