// The crash tests kill dmthin at named failpoints. Each name says the
// operation and the step (`add-device:snapshot-taken`); each one the crash
// tests use exists in the source, and each step of a DeviceSet or volume
// change is killed at by some crash test (base-device creation, run once
// per pool, aside).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');
const NAME = /^[a-z]+(-[a-z]+)*(:[a-z]+(-[a-z]+)*)+$/;
/** The creations transactions.ts runs, as CreateOperation lists them. */
const CREATE_OPERATIONS = ['add-device', 'create-device', 'create-base'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every failpoint the source names, templates over CreateOperation expanded. */
function sourceFailpoints(): Set<string> {
  const names = new Set<string>();
  for (const file of sources(path.join(REPO, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/failpoint\('([^']+)'\)/g)) names.add(m[1] ?? '');
    for (const m of text.matchAll(/failpoint\(`\$\{operation\}:([^`]+)`\)/g)) {
      for (const operation of CREATE_OPERATIONS) names.add(`${operation}:${m[1] ?? ''}`);
    }
  }
  return names;
}

/** The failpoints the crash tests kill at: the quoted names in them. */
function testedFailpoints(): Set<string> {
  const names = new Set<string>();
  for (const file of ['crash.test.ts', 'volume-crash.test.ts', 'snapshotter-crash.test.ts', 'migrate.test.ts']) {
    const text = readFileSync(path.join(REPO, 'test', 'vm', file), 'utf8');
    for (const m of text.matchAll(/'([a-z-]+(?::[a-z-]+)+)'/g)) if (!m[1]?.startsWith('node:')) names.add(m[1] ?? '');
  }
  return names;
}

describe('failpoints', () => {
  const inSource = sourceFailpoints();
  const tested = testedFailpoints();

  it('say the operation and the step', () => {
    assert.ok(inSource.size > 20, `found ${inSource.size} failpoints`);
    for (const name of inSource) assert.match(name, NAME);
  });

  it('that the crash tests use all exist', () => {
    assert.deepEqual([...tested].filter((name) => !inSource.has(name)), []);
  });

  it('of DeviceSet, volume and snapshot changes are all killed at by a crash test', () => {
    const untested = [...inSource].filter((name) => !tested.has(name) && !name.startsWith('create-base:'));
    assert.deepEqual(untested.sort(), []);
  });
});
