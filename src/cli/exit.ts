// The dmthin command's exit codes, for scripts to test.
import { isBadInput } from '../shared/errors';

export const EXIT = {
  /** done; for check and status, nothing wrong found */
  OK: 0,
  /** a problem found (check, an unhealthy pool) or the command failed */
  PROBLEM: 1,
  /** bad usage: unknown subcommand or option, a bad value */
  USAGE: 2,
  /** nothing answers on dmthin's socket: it is not running, or another socket was meant */
  UNREACHABLE: 3,
} as const;

/** The exit code a command that failed with err ends with: bad usage for refused input, else a problem. */
export function exitCodeFor(err: unknown): number {
  return isBadInput(err) ? EXIT.USAGE : EXIT.PROBLEM;
}
