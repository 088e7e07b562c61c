// A DeviceSet user that the crash-safety test kills. It opens the set in
// HOME, runs one operation and reports each one that finished on stdout
// ("created ID", "deleted ID"); DMTHIN_FAILPOINT picks where it dies.
//   node crash-child.js HOME add ID PARENT [SIZE] [--mount-parent]
//   node crash-child.js HOME create ID        (a device with its own ext4, as thin volumes are)
//   node crash-child.js HOME delete ID
//   node crash-child.js HOME churn TAG        (adds and deletes until killed)
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { DeviceSet } from '../../src/deviceset';
import { mountLayer, openSet } from './deviceset';

async function addWithData(set: DeviceSet, id: string, parent: string, size?: number): Promise<void> {
  await set.addDevice(id, parent, size === undefined ? {} : { size });
  const rootfs = await mountLayer(set, id);
  await fsp.writeFile(path.join(rootfs, `${id}.txt`), id);
  await set.unmountDevice(id);
  process.stdout.write(`created ${id}\n`);
}

async function main(): Promise<void> {
  const [home, op, id = '', parent = '', size] = process.argv.slice(2);
  if (home === undefined || op === undefined) throw new Error('usage: crash-child HOME OP ...');
  const set = await openSet(home);
  process.stdout.write('open\n');
  if (op === 'add') {
    if (process.argv.includes('--mount-parent')) await mountLayer(set, parent);
    await addWithData(set, id, parent, size === undefined || size.startsWith('--') ? undefined : Number(size));
  } else if (op === 'create') {
    await set.createDevice(id, { size: 64 * 1024 * 1024, fs: 'ext4' });
    const dir = await set.mountDevice(id);
    await fsp.writeFile(path.join(dir, `${id}.txt`), id);
    await set.unmountDevice(id);
    process.stdout.write(`made ${id}\n`);
  } else if (op === 'delete') {
    await set.deleteDevice(id);
    process.stdout.write(`deleted ${id}\n`);
  } else if (op === 'churn') {
    for (let i = 0; ; i++) {
      await addWithData(set, `${id}-${i}`, i % 2 === 0 ? '' : `${id}-${i - 1}`);
      if (i >= 2) {
        await set.deleteDevice(`${id}-${i - 2}`);
        process.stdout.write(`deleted ${id}-${i - 2}\n`);
      }
    }
  }
  await set.shutdown();
}

main().catch((err: unknown) => {
  process.stderr.write(`crash-child: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
