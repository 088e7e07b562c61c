// JSON schemas of the GraphDriver request bodies, as dockerd 20.10 sends
// them (docker-plugin-protocols.md §2.1): omitempty fields may be absent,
// Init's Opts/UIDMaps/GIDMaps may be null. Unknown fields are ignored,
// as dockerd ignores unknown fields in answers.
import Ajv, { type JSONSchemaType, type ValidateFunction } from 'ajv';

/** idtools.IDMap as dockerd encodes it (the docs' ContainerID/HostID spelling is wrong). */
export interface IdMap {
  container_id: number;
  host_id: number;
  size: number;
}

export interface InitBody {
  Home: string;
  Opts?: string[] | null;
  UIDMaps?: IdMap[] | null;
  GIDMaps?: IdMap[] | null;
}

export interface LayerBody {
  ID?: string;
  Parent?: string;
  MountLabel?: string;
  StorageOpt?: Record<string, string> | null;
}

/** No slash, no "..", no NUL, at most 128 characters: a layer id is a plain name (the DeviceSet checks the rest). */
const idSchema = { type: 'string', maxLength: 128, pattern: '^(?!.*\\.\\.)[^/\\u0000]*$' } as const;

const idMapSchema: JSONSchemaType<IdMap> = {
  type: 'object',
  properties: { container_id: { type: 'integer' }, host_id: { type: 'integer' }, size: { type: 'integer' } },
  required: ['container_id', 'host_id', 'size'],
};

const initSchema: JSONSchemaType<InitBody> = {
  type: 'object',
  properties: {
    Home: { type: 'string', minLength: 2, maxLength: 4000, pattern: '^/[^\\u0000]*$' },
    Opts: { type: 'array', items: { type: 'string', maxLength: 4096 }, nullable: true },
    UIDMaps: { type: 'array', items: idMapSchema, nullable: true },
    GIDMaps: { type: 'array', items: idMapSchema, nullable: true },
  },
  required: ['Home'],
};

const layerSchema: JSONSchemaType<LayerBody> = {
  type: 'object',
  properties: {
    ID: { ...idSchema, nullable: true },
    Parent: { ...idSchema, nullable: true },
    MountLabel: { type: 'string', maxLength: 4096, nullable: true },
    StorageOpt: { type: 'object', additionalProperties: { type: 'string' }, required: [], nullable: true },
  },
};

const ajv = new Ajv({ allErrors: false });

export const validateInit: ValidateFunction<InitBody> = ajv.compile(initSchema);
export const validateLayer: ValidateFunction<LayerBody> = ajv.compile(layerSchema);
