// JSON schemas of the VolumeDriver request bodies as dockerd 20.10 sends
// them (docker-plugin-protocols.md §3.1): every field present, Opts null
// when the volume has no options. The name's own rules (what may become a
// directory) are the store's, which says precisely what is wrong.
import Ajv, { type JSONSchemaType, type ValidateFunction } from 'ajv';

export interface NameBody {
  Name: string;
}

export interface CreateBody extends NameBody {
  Opts?: Record<string, string> | null;
}

export interface MountBody extends NameBody {
  ID: string;
}

// Long enough for any name the store would take (255) with room for its error to say why it is too long.
const nameSchema = { type: 'string', maxLength: 4096 } as const;

const nameBodySchema: JSONSchemaType<NameBody> = {
  type: 'object',
  properties: { Name: nameSchema },
  required: ['Name'],
};

const createSchema: JSONSchemaType<CreateBody> = {
  type: 'object',
  properties: {
    Name: nameSchema,
    Opts: { type: 'object', additionalProperties: { type: 'string' }, required: [], maxProperties: 64, nullable: true },
  },
  required: ['Name'],
};

const mountSchema: JSONSchemaType<MountBody> = {
  type: 'object',
  properties: { Name: nameSchema, ID: { type: 'string', maxLength: 1024 } },
  required: ['Name', 'ID'],
};

const ajv = new Ajv({ allErrors: false });

export const validateName: ValidateFunction<NameBody> = ajv.compile(nameBodySchema);
export const validateCreate: ValidateFunction<CreateBody> = ajv.compile(createSchema);
export const validateMount: ValidateFunction<MountBody> = ajv.compile(mountSchema);
