// VolumeDriver.* as dockerd 20.10 calls them (docker-plugin-protocols.md
// §3): each body checked against its schema, then handed to the volume
// store. Answers are HTTP 200, errors {"Err"} (the app's error handler).
// Get of an unknown volume is an Err, which dockerd reads as "no such
// volume"; Get of a volume that exists always answers it.
import type { ValidateFunction } from 'ajv';
import type { VolumeDriverApi } from '../volume/types';
import { schemaError } from './schemas';
import { validateCreate, validateMount, validateName } from './volume-schemas';

/** A JSON call: the parsed request body in, the answer out (an {Err} answer for a refusal). */
export type JsonRoute = (body: unknown) => Promise<object> | object;

export function addVolumeRoutes(add: (name: string, handler: JsonRoute) => void, volumes: VolumeDriverApi): void {
  const route = <B>(name: string, validate: ValidateFunction<B> | null, handler: (body: B) => Promise<object> | object): void => {
    add(`VolumeDriver.${name}`, (body: unknown) => {
      if (validate !== null && !validate(body)) return { Err: `VolumeDriver.${name}: ${schemaError(validate)}` };
      return handler(body as B);
    });
  };

  route('Capabilities', null, () => ({ Capabilities: { Scope: 'local' } }));
  route('Create', validateCreate, async (b) => (await volumes.create(b.Name, b.Opts ?? null), {}));
  route('Remove', validateName, async (b) => (await volumes.remove(b.Name), {}));
  route('Mount', validateMount, async (b) => ({ Mountpoint: await volumes.mount(b.Name, b.ID) }));
  route('Unmount', validateMount, async (b) => (await volumes.unmount(b.Name, b.ID), {}));
  route('Path', validateName, async (b) => ({ Mountpoint: await volumes.path(b.Name) }));
  route('Get', validateName, async (b) => {
    const volume = await volumes.get(b.Name);
    return volume === null ? { Err: `no such volume: ${b.Name}` } : { Volume: volume };
  });
  route('List', null, async () => ({ Volumes: await volumes.list() }));
}
