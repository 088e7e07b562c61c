// The native addon loads at its first use, not at import: option parsing,
// the settings, the HTTP app and --help work in a checkout whose addon is
// not built, and the first call that needs it says how to build it.
// - a copy of dist/ without build/Release/dmthin.node, run in a child node
// - parsing dm.* options, volume options and settings, building the app and the command: fine
// - a device-mapper call and a mount constant: the actionable error
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');

describe('the native addon without a build', () => {
  let copy = '';

  before(() => {
    copy = mkdtempSync('/var/tmp/dmthin-noaddon-');
    cpSync(path.join(REPO, 'dist', 'src'), path.join(copy, 'dist', 'src'), { recursive: true });
    cpSync(path.join(REPO, 'package.json'), path.join(copy, 'package.json'));
    symlinkSync(path.join(REPO, 'node_modules'), path.join(copy, 'node_modules'));
  });

  after(() => {
    if (copy !== '') rmSync(copy, { recursive: true, force: true });
  });

  /** Runs `script` in a child node inside the copy; its stdout. */
  const run = (script: string): string => execFileSync(process.execPath, ['-e', script], { cwd: copy, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  it('parses options and settings, and builds the app and the command', () => {
    const out = run(`
      const { parseOptions } = require('./dist/src/deviceset/options');
      const { parseVolumeOptions } = require('./dist/src/volume/options');
      const { loadSettings } = require('./dist/src/config');
      const { createApp } = require('./dist/src/server/app');
      const { buildProgram } = require('./dist/src/cli');
      const { createLogger } = require('./dist/src/shared/log');
      const options = parseOptions(['dm.basesize=20G']);
      const volume = parseVolumeOptions({ size: '1G' });
      const settings = loadSettings({});
      createApp({ graph: {}, volumes: {}, log: createLogger('error', 'json') });
      buildProgram();
      process.stdout.write(JSON.stringify({ baseSize: options.baseSize, volume: volume.kind, socket: settings.socket }));
    `);
    const parsed = JSON.parse(out) as { baseSize: number; volume: string; socket: string };
    assert.equal(parsed.baseSize, 20 * 1024 ** 3);
    assert.equal(parsed.volume, 'thin');
    assert.equal(parsed.socket, '/run/docker/plugins/dmthin.sock');
  });

  it('says how to build the addon at the first call that needs it', () => {
    const out = run(`
      const { dm, fs } = require('./dist/src/devmapper');
      const messages = [];
      for (const use of [() => dm.version(), () => fs.constants.MS_BIND]) {
        try { use(); messages.push('no error'); } catch (err) { messages.push(err.message); }
      }
      process.stdout.write(JSON.stringify(messages));
    `);
    const messages = JSON.parse(out) as string[];
    assert.equal(messages.length, 2);
    for (const message of messages) {
      assert.match(message, /cannot load the native addon .*dmthin\.node/);
      assert.match(message, /build it with `npm run build`/);
    }
  });
});
