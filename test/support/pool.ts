// A throwaway thin pool on two sparse loop-backed files, for the VM suites.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { dm, loop, thin } from '../../src/devmapper';
import { scratchDir } from './env';

const MiB = 1024 * 1024;

export interface TestPoolOptions {
  dataBytes?: number;
  metadataBytes?: number;
  /** sectors per data block */
  blockSize?: number;
  errorIfNoSpace?: boolean;
}

export class TestPool {
  private constructor(
    readonly prefix: string,
    readonly dir: string,
    readonly name: string,
    readonly blockSize: number,
    readonly dataBytes: number,
  ) {}

  /** /dev/mapper path of the pool, as thin tables name it. */
  get path(): string {
    return dm.devicePath(this.name);
  }

  static async create(options: TestPoolOptions = {}): Promise<TestPool> {
    const prefix = `dmthin-test-${randomBytes(4).toString('hex')}`;
    const dir = await fsp.mkdtemp(path.join(scratchDir(), `${prefix}-`));
    const dataBytes = options.dataBytes ?? 2048 * MiB;
    const blockSize = options.blockSize ?? 128;
    const dataFile = path.join(dir, 'data');
    const metadataFile = path.join(dir, 'metadata');
    await fsp.writeFile(dataFile, '');
    await fsp.truncate(dataFile, dataBytes);
    // A metadata device must start zeroed, or the pool reads garbage as a superblock.
    await fsp.writeFile(metadataFile, Buffer.alloc(4096));
    await fsp.truncate(metadataFile, options.metadataBytes ?? 64 * MiB);

    const data = await loop.attachAutoclear(dataFile);
    const metadata = await loop.attachAutoclear(metadataFile);
    const pool = new TestPool(prefix, dir, `${prefix}-pool`, blockSize, dataBytes);
    try {
      const table = thin.thinPoolTable(metadata.device, data.device, dataBytes / 512, {
        blockSize,
        lowWaterMark: 0,
        errorIfNoSpace: options.errorIfNoSpace ?? false,
      });
      await dm.create(pool.name, [table]);
    } finally {
      // From here the pool holds the loop devices; they go away with it.
      await data.release();
      await metadata.release();
    }
    return pool;
  }

  thinName(id: number): string {
    return `${this.prefix}-${id}`;
  }

  /** `dmsetup create PREFIX-ID --table "0 SECTORS thin POOL ID"`; returns the /dev/mapper path. */
  async activate(id: number, bytes: number): Promise<string> {
    await dm.create(this.thinName(id), [thin.thinTable(this.path, id, bytes / 512)]);
    return dm.devicePath(this.thinName(id));
  }

  /** Removes every device of this pool, then the pool (its loop devices clear themselves), then its files. */
  async destroy(): Promise<void> {
    const devices = (await dm.list()).map((d) => d.name).filter((n) => n.startsWith(`${this.prefix}-`) && n !== this.name);
    for (const name of devices) await dm.remove(name, { retry: true }).catch(() => undefined);
    await dm.remove(this.name, { retry: true }).catch(() => undefined);
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
