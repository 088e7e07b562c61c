// Named points inside pool changes where the crash-safety tests kill the
// process (SIGKILL, nothing runs after it), chosen with DMTHIN_FAILPOINT.
// Unset, a failpoint is one string comparison.
const armed = process.env['DMTHIN_FAILPOINT'] ?? '';

export function failpoint(name: string): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
}
