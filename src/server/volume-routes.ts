// VolumeDriver.* as dockerd 20.10 calls them (docker-plugin-protocols.md
// §3): each body checked against its schema (volume-schemas.ts), then
// handed to the volume store. Answers and errors as reply.ts makes them.
// Get of an unknown volume is an Err, which dockerd reads as "no such
// volume"; Get of a volume that exists always answers it.
import type { ValidateFunction } from 'ajv';
import type { VolumeDriverApi } from '../volume/types';
import { invalidBody, type AddRoute } from './reply';
import { validateCreate, validateMount, validateName } from './volume-schemas';

export function addVolumeRoutes(add: AddRoute, volumes: VolumeDriverApi): void {
  const route = <B>(name: string, validate: ValidateFunction<B> | null, handler: (body: B) => Promise<object> | object): void => {
    add(`VolumeDriver.${name}`, (body: unknown) => {
      if (validate !== null && !validate(body)) return invalidBody(`VolumeDriver.${name}`, validate);
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
