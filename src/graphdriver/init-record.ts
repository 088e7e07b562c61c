// The last GraphDriver.Init, kept in the state directory: dockerd sends
// Init once per daemon start, so a plugin restarted under a running
// dockerd must remember its Home and --storage-opt to go on serving it.
import path from 'node:path';
import { readJsonFile, writeFileAtomic } from '../shared/atomic-file';
import { DmthinError } from '../shared/errors';

export interface InitRecord {
  home: string;
  opts: string[];
}

const FILE = 'graphdriver.json';

export async function loadInitRecord(root: string): Promise<InitRecord | null> {
  const file = path.join(root, FILE);
  let json: unknown;
  try {
    json = await readJsonFile(file);
  } catch (err) {
    throw new DmthinError('EMETADATA', `${file} is unreadable: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (json === null) return null;
  const o = json as { Home?: unknown; Opts?: unknown };
  if (typeof o.Home !== 'string' || !Array.isArray(o.Opts) || !o.Opts.every((x) => typeof x === 'string')) {
    throw new DmthinError('EMETADATA', `${file} is malformed: want {"Home": string, "Opts": [string]}`);
  }
  return { home: o.Home, opts: o.Opts as string[] };
}

export async function saveInitRecord(root: string, record: InitRecord): Promise<void> {
  await writeFileAtomic(path.join(root, FILE), JSON.stringify({ Home: record.home, Opts: record.opts }));
}
