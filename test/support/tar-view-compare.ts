// Whether dmthin's TarView of a tar equals Go's, entry by entry.
import { isDeepStrictEqual } from 'node:util';
import type { TarView } from './tar-view';

/** null when they agree (or dmthin refused, as documented, after listing what Go listed up to there); else what differs. */
export function viewDifference(go: TarView, view: TarView, beyondGo: boolean): string | null {
  const count = beyondGo ? view.entries.length : Math.max(go.entries.length, view.entries.length);
  for (let i = 0; i < count; i++) {
    const a = go.entries[i];
    const b = view.entries[i];
    if (!isDeepStrictEqual(a, b)) return `entry ${i}: Go ${JSON.stringify(a ?? null)} dmthin ${JSON.stringify(b ?? null)}`;
  }
  if (beyondGo) return null;
  if (go.error !== view.error) return `error: Go ${JSON.stringify(go.error)} dmthin ${JSON.stringify(view.error)}`;
  return null;
}
