// A volume's opts.json: what it was created with, written once, atomically,
// before the volume's directory takes its name. Reading never throws: a
// file that cannot be used comes back as the reason why, so that the
// volume stays listed and says what is wrong instead of vanishing.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import Ajv, { type JSONSchemaType } from 'ajv';
import { writeFileAtomic } from '../shared/atomic-file';
import type { FsType } from '../deviceset/filesystem';
import { parseVolumeOptions, type PlainSpec, type ThinSpec } from './options';

export const OPTS_FILE = 'opts.json';
const VERSION = 1;

export interface ThinRecord {
  /** bytes */
  Size: number;
  Filesystem: FsType;
  /** the volume this one was cloned from */
  From?: string;
}

export interface VolumeRecord {
  Version: number;
  Kind: 'plain' | 'thin';
  /** RFC 3339 */
  CreatedAt: string;
  /** the options as given at create (secrets included: the file is 0600) */
  Options: Record<string, string>;
  Thin?: ThinRecord;
}

const schema: JSONSchemaType<VolumeRecord> = {
  type: 'object',
  properties: {
    Version: { type: 'integer', const: VERSION },
    Kind: { type: 'string', enum: ['plain', 'thin'] },
    // RFC 3339, as dockerd decodes CreatedAt.
    CreatedAt: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' },
    Options: { type: 'object', additionalProperties: { type: 'string' }, required: [] },
    Thin: {
      type: 'object',
      properties: {
        Size: { type: 'integer', minimum: 1 },
        Filesystem: { type: 'string', enum: ['ext4', 'xfs'] },
        From: { type: 'string', nullable: true },
      },
      required: ['Size', 'Filesystem'],
      nullable: true,
    },
  },
  required: ['Version', 'Kind', 'CreatedAt', 'Options'],
};

const validate = new Ajv({ allErrors: false }).compile(schema);

/** What a volume's record says, checked: its spec, or why it cannot be used. */
export type RecordState =
  | { ok: true; record: VolumeRecord; spec: PlainSpec | ThinSpec }
  | { ok: false; problem: string };

/** Reads <dir>/opts.json; null when there is none (a plain directory volume, as Docker's local driver keeps them). */
export async function readVolumeRecord(dir: string): Promise<RecordState | null> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, OPTS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { ok: false, problem: `${OPTS_FILE} cannot be read: ${(err as Error).message}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `${OPTS_FILE} is corrupt: ${(err as Error).message}` };
  }
  return checkRecord(json);
}

/** Checks a parsed opts.json against its schema and its own options. */
export function checkRecord(json: unknown): RecordState {
  if (!validate(json)) {
    const [first] = validate.errors ?? [];
    const where = first === undefined || first.instancePath === '' ? '' : ` at ${first.instancePath.slice(1).replace(/\//g, '.')}`;
    return { ok: false, problem: `${OPTS_FILE} is corrupt${where}: ${first?.message ?? 'invalid'}` };
  }
  let spec;
  try {
    spec = parseVolumeOptions(json.Options);
  } catch (err) {
    return { ok: false, problem: `${OPTS_FILE} holds options dmthin refuses: ${(err as Error).message}` };
  }
  if (json.Kind === 'thin') {
    if (spec.kind === 'plain' || json.Thin === undefined) return { ok: false, problem: `${OPTS_FILE} is corrupt: a thin volume without its thin record` };
    const thin: ThinSpec = spec.kind === 'thin' ? spec : { kind: 'thin' };
    return { ok: true, record: json, spec: thin };
  }
  if (spec.kind === 'thin' || json.Thin !== undefined) return { ok: false, problem: `${OPTS_FILE} is corrupt: a plain volume with thin options` };
  return { ok: true, record: json, spec: spec.kind === 'plain' ? spec : { kind: 'plain' } };
}

export async function writeVolumeRecord(dir: string, record: VolumeRecord): Promise<void> {
  await writeFileAtomic(path.join(dir, OPTS_FILE), `${JSON.stringify(record)}\n`, 0o600);
}

export function newRecord(kind: 'plain' | 'thin', options: Readonly<Record<string, string>>, thin?: ThinRecord): VolumeRecord {
  return { Version: VERSION, Kind: kind, CreatedAt: new Date().toISOString(), Options: { ...options }, ...(thin === undefined ? {} : { Thin: thin }) };
}
