// The thin pool's own record of itself, read from the first block of its
// metadata device or file (the kernel's struct thin_disk_superblock, all
// little-endian): for a pool that is not active, the transaction id and
// block size it will have once activated, without activating it.
import { promises as fsp } from 'node:fs';
import { DmthinError } from '../shared/errors';

const SUPERBLOCK_MAGIC = 27022010n;
const MAGIC_OFFSET = 32;
const TRANSACTION_ID_OFFSET = 48;
const DATA_BLOCK_SIZE_OFFSET = 336;
const READ_BYTES = 512;

export interface ThinSuperblock {
  transactionId: number;
  /** in 512-byte sectors */
  dataBlockSize: number;
}

export async function readThinSuperblock(metadataFile: string): Promise<ThinSuperblock> {
  const handle = await fsp.open(metadataFile, 'r');
  const buffer = Buffer.alloc(READ_BYTES);
  try {
    await handle.read(buffer, 0, READ_BYTES, 0);
  } finally {
    await handle.close();
  }
  if (buffer.readBigUInt64LE(MAGIC_OFFSET) !== SUPERBLOCK_MAGIC) {
    throw new DmthinError('ENOTPOOL', `${metadataFile} holds no thin pool metadata (no superblock magic)`);
  }
  return {
    transactionId: Number(buffer.readBigUInt64LE(TRANSACTION_ID_OFFSET)),
    dataBlockSize: buffer.readUInt32LE(DATA_BLOCK_SIZE_OFFSET),
  };
}
