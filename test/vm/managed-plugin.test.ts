// End to end, the way users get dmthin: plugin/build.sh creates the managed
// plugin, it is pushed to a real registry and installed from there with
// `docker plugin install`, serves a plain and a thin volume, then the
// dockerd (each engine: Debian 12's 20.10, Debian 13's 26)
// restarted with `--experimental -s dmthin:latest` runs and commits
// containers on it, and keeps every layer and volume through
// `docker plugin disable -f`/`enable` and through a SIGKILL of the plugin
// process (dockerd restarts it). Every path dmthin hands dockerd (Get's Dir,
// volume mountpoints) must lie under the propagated mount /mnt/dmthin.
// The first engine's describe builds the plugin and pushes it to the one
// registry; every engine installs it from there (a build under emulation
// takes minutes, and users install one image on any engine).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { DOCKERD_26, Dockerd, dockerdMatrix, engineMissing, haveDockerd } from '../support/dockerd';
import { requireRoot, requireVm, skipBecause } from '../support/env';
import { parseMountinfo } from '../../src/devmapper/mountinfo';
import { tempHome } from '../support/deviceset';
import { waitUntil, type Started } from '../support/processes';
import { REGISTRY_BINARY, startRegistry } from '../support/registry';

const execFileAsync = promisify(execFile);
const PROJECT = path.join(__dirname, '..', '..', '..');
const BUILD = path.join(PROJECT, 'plugin', 'build.sh');
/** The local name, spelled the same everywhere: it becomes part of Home and of dockerd's image metadata paths. */
const NAME = 'dmthin:latest';
const STORAGE_OPTS = 'dm.loopdatasize=8G dm.loopmetadatasize=256M dm.basesize=1G';
/** The plugin's propagated mount, as it sees it: config.json's propagatedMount. */
const PROPAGATED = '/mnt/dmthin';

interface PluginInspect {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  Config: { Interface: { Types: string[]; Socket: string }; PropagatedMount: string };
  Settings: { Env: string[]; Mounts: Array<{ Name: string; Source: string }> };
}

interface VolumeInspect {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Status: Record<string, unknown>;
}

/** Where the plugin is pushed to and installed from. */
const REMOTE = 'localhost:5000/dmthin:e2e';

describe('the managed plugin: build, registry, install, dockerd on it (VM)', function () {
  let top = '';
  let registry: Started | undefined;

  before(async function () {
    requireVm(this);
    requireRoot(this);
    if (!haveDockerd()) skipBecause(this, 'dockerd is not installed (scripts/setup --test installs docker.io)');
    if (!existsSync(REGISTRY_BINARY)) skipBecause(this, 'docker-registry is not installed (scripts/setup --test installs it)');
    top = await tempHome('plugin');
    registry = await startRegistry(top);
  });

  after(async () => {
    await registry?.stop();
  });

  /** The engine whose describe built the plugin and pushed it, once for all of them. */
  let pushedBy: string | undefined;

  // 26 by default, to keep CI's time: DMTHIN_DOCKERD_MATRIX=full adds 20.10 (it builds, 26 installs).
  for (const [index, engine] of dockerdMatrix([DOCKERD_26]).entries()) {
    describe(`on dockerd ${engine.version}`, function () {
      /** The first engine builds the plugin; every engine installs it from the registry. */
      const builds = index === 0;
      let dir = '';
      let stateDir = '';
      let dockerd: Dockerd | undefined;
      const daemon = (): Dockerd => {
        assert.ok(dockerd, 'dockerd was started in before()');
        return dockerd;
      };
      const docker = (...args: string[]): Promise<string> => daemon().docker(...args);
      const run = async (...args: string[]): Promise<string> => (await docker('run', '--rm', '--network', 'none', ...args)).trim();

      const inspectPlugin = async (name: string): Promise<PluginInspect> => {
        const [plugin] = JSON.parse(await docker('plugin', 'inspect', name)) as PluginInspect[];
        assert.ok(plugin, `docker plugin inspect ${name} returned nothing`);
        return plugin;
      };

      /**
       * The host pid of the plugin's process: node running dmthin whose root
       * (the mount at "/" in its own mount table) is this plugin's rootfs.
       */
      const pluginPid = async (): Promise<number | null> => {
        const { Id } = await inspectPlugin(NAME);
        for (const entry of await fsp.readdir('/proc')) {
          if (!/^\d+$/.test(entry)) continue;
          const cmdline = await fsp.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
          if (!cmdline.includes('/opt/dmthin/dist/src/cli.js')) continue;
          const mounts = await fsp.readFile(`/proc/${entry}/mountinfo`, 'utf8').catch(() => '');
          const root = mounts.split('\n').map((line) => line.split(' ')).find((fields) => fields[4] === '/');
          if (root?.[3]?.endsWith(`/plugins/${Id}/rootfs`)) return Number(entry);
        }
        return null;
      };

      /** Where dockerd sees the plugin's propagated mount on the host. */
      const propagatedOnHost = async (): Promise<string> => {
        const { Id } = await inspectPlugin(NAME);
        return fsp.realpath(path.join(daemon().dataRoot, 'plugins', Id, 'propagated-mount'));
      };

      /** Mount points on the host (dockerd's view) under the plugin's propagated mount. */
      const propagatedMounts = async (): Promise<string[]> => {
        const root = `${await propagatedOnHost()}/`;
        return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
          .map((entry) => entry.mountpoint)
          .filter((mountpoint) => mountpoint.startsWith(root));
      };

      /**
       * What dmthin has mounted, seen from inside the plugin: thin devices
       * (layers, thin volumes) and plain volumes. Each must lie under the
       * propagated mount, or dockerd would never see it.
       */
      const pluginMounts = async (): Promise<string[]> => {
        const pid = await pluginPid();
        assert.ok(pid !== null, 'the plugin process runs');
        const mounts = parseMountinfo(await fsp.readFile(`/proc/${pid}/mountinfo`, 'utf8'))
          .filter((entry) => /^\/dev\/(mapper\/|dm-)/.test(entry.source) || entry.mountpoint.includes('/volumes/'))
          .map((entry) => entry.mountpoint);
        const outside = mounts.filter((mountpoint) => !mountpoint.startsWith(`${PROPAGATED}/`));
        assert.deepEqual(outside, [], `dmthin mounted these outside its propagated mount ${PROPAGATED}`);
        return mounts;
      };

      const inspectVolume = async (name: string): Promise<VolumeInspect> => {
        const [volume] = JSON.parse(await docker('volume', 'inspect', name)) as VolumeInspect[];
        assert.ok(volume, `docker volume inspect ${name} returned nothing`);
        return volume;
      };

      /** Reads each volume's file f in a new container. */
      const volumeFiles = (): Promise<string> =>
        run('-v', 'plainvol:/p', '-v', 'thinvol:/t', 'bb:latest', 'sh', '-c', 'cat /p/f /t/f');

      before(async function () {
        const missing = engineMissing(engine);
        if (missing !== null) skipBecause(this, missing);
        dir = path.join(top, `dockerd-${engine.version}`);
        stateDir = path.join(dir, 'state');
        dockerd = new Dockerd(dir, undefined, engine);
        // Plugins are installed before dockerd is switched to them: any built-in driver will do.
        await dockerd.start();
      });

      // Each step builds on the ones before: after a failure the rest skip, saying which step failed.
      let failedStep: string | undefined;
      beforeEach(function () {
        if (failedStep !== undefined) skipBecause(this, `an earlier step failed: "${failedStep}"`);
      });

      afterEach(function () {
        if (this.currentTest?.state === 'failed') {
          failedStep = this.currentTest.title;
          const log = dockerd?.logTail(40) ?? '(dockerd never started)';
          process.stdout.write(`      dockerd log, last lines:\n${log.replace(/^/gm, '        ')}\n`);
        }
      });

      after(async () => {
        // dockerd stops its containers, then SIGTERMs the plugin.
        await dockerd?.stop();
      });

      /** `docker plugin install` from the registry, as users do, with this test's settings. */
      async function installFromRegistry(): Promise<void> {
        // The state mount's host directory must exist: runc refuses a bind of a missing source.
        await fsp.mkdir(stateDir);
        await docker('plugin', 'install', '--grant-all-permissions', '--alias', 'dmthin', REMOTE,
          `state.source=${stateDir}`, `DMTHIN_STORAGE_OPTS=${STORAGE_OPTS}`, 'DMTHIN_VOLUME_KIND=plain', 'DMTHIN_LOG_LEVEL=debug');
        const plugin = await inspectPlugin(NAME);
        assert.equal(plugin.Enabled, true);
        assert.equal(plugin.PluginReference, REMOTE);
        assert.ok(plugin.Settings.Env.includes('DMTHIN_VOLUME_KIND=plain'), `settings: ${plugin.Settings.Env.join(' ')}`);
        assert.equal(plugin.Settings.Mounts.find((m) => m.Name === 'state')?.Source, stateDir);
        assert.notEqual(await pluginPid(), null, 'the plugin process runs');
      }

      if (builds) {
        it('is created by plugin/build.sh from the host\'s build when the base image cannot be pulled', async function () {
          // Under a loaded emulated VM the build took 8 minutes (dockerd 26, rootfs and create).
          this.timeout(900_000);
          // The VM has no network: the pull of the Dockerfile's base image fails.
          const { stdout } = await execFileAsync(BUILD, [REMOTE], {
            env: { ...process.env, DOCKER_HOST: daemon().host, TMPDIR: dir },
            maxBuffer: 16 * 1024 * 1024,
          });
          // Where a build under emulation spends its time, for whoever reads CI's log.
          for (const line of stdout.split('\n').filter((l) => /\d+ s\)?$/.test(l))) process.stdout.write(`      ${line.trim()}\n`);
          assert.match(stdout, /base image node:20\S* cannot be pulled/);
          assert.match(stdout, /assembling the rootfs from this host/);
          assert.match(stdout, /created plugin localhost:5000\/dmthin:e2e/);
          const plugin = await inspectPlugin(REMOTE);
          assert.equal(plugin.Enabled, false, 'docker plugin create leaves a plugin disabled');
          assert.deepEqual(plugin.Config.Interface.Types, ['docker.graphdriver/1.0', 'docker.volumedriver/1.0']);
          assert.equal(plugin.Config.PropagatedMount, '/mnt/dmthin');
        });

        it('is pushed to the local registry and installed from there, enabled', async function () {
          this.timeout(600_000);
          await docker('plugin', 'push', REMOTE);
          pushedBy = engine.version;
          await docker('plugin', 'rm', REMOTE);
          assert.equal((await docker('plugin', 'ls', '--format', '{{.Name}}')).trim(), '', 'no plugin is left before the install');
          await installFromRegistry();
        });
      } else {
        it('is installed, enabled, from the local registry where the first engine pushed it', async function () {
          this.timeout(600_000);
          assert.ok(pushedBy !== undefined, 'the first engine\'s describe built and pushed the plugin');
          await installFromRegistry();
        });
      }

      it('serves a plain volume and a thin one (-o size), their mountpoints under the propagated mount', async function () {
        this.timeout(300_000);
        // DMTHIN_VOLUME_KIND=plain, set at install: no options make a plain volume.
        await docker('volume', 'create', '-d', 'dmthin', 'plainvol');
        // The pool's base is xfs, whose 300M minimum is more than this test needs.
        await docker('volume', 'create', '-d', 'dmthin', '-o', 'size=64M', '-o', 'fs=ext4', 'thinvol');
        const plain = await inspectVolume('plainvol');
        const thin = await inspectVolume('thinvol');
        assert.equal(plain.Driver, NAME);
        assert.equal(plain.Status['Kind'], 'plain');
        assert.equal(thin.Status['Kind'], 'thin');
        assert.equal(thin.Status['Size'], '64MiB');
        assert.equal(thin.Status['Filesystem'], 'ext4');
        // The plain volume's data is in the state directory, the thin one's in the pool.
        assert.ok(existsSync(path.join(stateDir, 'volumes', 'plainvol', '_data')), 'plainvol/_data is in the state directory');
        // docker volume inspect shows the driver's own path (dockerd rescopes it to the host only at Mount).
        assert.equal(plain.Mountpoint, `${PROPAGATED}/volumes/plainvol`);
        assert.equal(thin.Mountpoint, `${PROPAGATED}/volumes/thinvol`);

        // Images belong to a storage driver: this one is for the vfs dockerd, the next step imports its own.
        await daemon().importBusybox('bb:latest');
        await docker('run', '-d', '--name', 'volumes', '--network', 'none', '-v', 'plainvol:/p', '-v', 'thinvol:/t', 'bb:latest',
          'sh', '-c', 'echo plain > /p/f; echo thin > /t/f; exec sleep 600');
        await waitUntil('the container to write to both volumes', async () => (await docker('exec', 'volumes', 'cat', '/p/f', '/t/f')) === 'plain\nthin\n');
        const mounted = await pluginMounts();
        assert.ok(mounted.includes(`${PROPAGATED}/volumes/plainvol`) && mounted.includes(`${PROPAGATED}/volumes/thinvol`), `plugin mounts: ${mounted.join(' ')}`);
        const host = await propagatedOnHost();
        const onHost = await propagatedMounts();
        assert.ok(onHost.includes(`${host}/volumes/plainvol`) && onHost.includes(`${host}/volumes/thinvol`), `dockerd sees both volumes mounted: ${onHost.join(' ')}`);
        // 64M is a quota the container runs into.
        assert.match(await daemon().dockerFails('exec', 'volumes', 'dd', 'if=/dev/zero', 'of=/t/big', 'bs=1M', 'count=100'), /No space left on device/);
        await docker('exec', 'volumes', 'rm', '/t/big');
        await docker('rm', '-f', 'volumes');
        assert.equal(await volumeFiles(), 'plain\nthin');
      });

      it('is the storage driver of dockerd restarted with --experimental -s dmthin:latest, its pool in the state directory', async function () {
        this.timeout(300_000);
        await daemon().stop();
        await daemon().start({ driver: NAME, args: ['--experimental', '-s', NAME] });
        assert.equal((await docker('info', '--format', '{{.Driver}}')).trim(), NAME);
        const info = await docker('info');
        assert.match(info, /Pool Name: dmthin-/);
        assert.match(info, /Data loop file: \/var\/lib\/dmthin\/devicemapper\/data/);
        assert.ok(existsSync(path.join(stateDir, 'devicemapper', 'data')), `the pool's data file is in the host's state directory ${stateDir}`);
        await daemon().importBusybox('bb:latest');
        assert.equal(await run('bb:latest', 'echo', 'hello from the managed plugin'), 'hello from the managed plugin');
      });

      it('still serves the volumes made before dockerd restarted', async function () {
        this.timeout(300_000);
        assert.deepEqual((await docker('volume', 'ls', '-q')).trim().split('\n').sort(), ['plainvol', 'thinvol']);
        assert.equal(await volumeFiles(), 'plain\nthin');
      });

      it('runs, diffs and commits containers', async function () {
        this.timeout(300_000);
        await docker('run', '--name', 'c1', '--network', 'none', 'bb:latest', 'sh', '-c', 'echo data > /newfile; rm /bin/cat; mkdir -p /d/e');
        assert.deepEqual((await docker('diff', 'c1')).trim().split('\n').sort(), ['A /d', 'A /d/e', 'A /newfile', 'C /bin', 'D /bin/cat']);
        await docker('commit', 'c1', 'bb:two');
        await docker('rm', 'c1');
        assert.equal(await run('bb:two', 'busybox', 'cat', '/newfile'), 'data');
        // A stopped container whose writable layer must outlive what follows.
        assert.equal((await docker('run', '--name', 'keeper', '--network', 'none', 'bb:latest', 'sh', '-c', 'echo kept >> /kept; cat /kept')).trim(), 'kept');
      });

      it('refuses docker plugin disable while dockerd uses it, and keeps every layer and volume through disable -f and enable', async function () {
        this.timeout(300_000);
        await assert.rejects(docker('plugin', 'disable', NAME), /in use/);
        await docker('plugin', 'disable', '-f', NAME);
        assert.equal(await pluginPid(), null, 'the plugin process is gone once disabled');
        await docker('plugin', 'enable', NAME);
        assert.match(await docker('images', '--format', '{{.Repository}}:{{.Tag}}'), /bb:two/);
        assert.equal(await run('bb:two', 'busybox', 'cat', '/newfile'), 'data');
        assert.equal((await docker('start', '-a', 'keeper')).trim(), 'kept\nkept');
        assert.equal(await volumeFiles(), 'plain\nthin');
      });

      it('loses nothing when the plugin process is killed: dockerd restarts it', async function () {
        this.timeout(300_000);
        await docker('run', '-d', '--name', 'runner', '--network', 'none', '-v', 'thinvol:/t', '-v', 'plainvol:/p', 'bb:latest',
          'sh', '-c', 'echo before > /work; echo before >> /t/f; echo before >> /p/f; exec sleep 600');
        await waitUntil('the running container to write /work', async () => (await docker('exec', 'runner', 'cat', '/work')).trim() === 'before');
        // Get's Dir: <Home>/mnt/<id>/rootfs, Home being <propagated mount>/<plugin name> as dockerd's Init gives it.
        const mounted = await pluginMounts();
        assert.ok(mounted.some((m) => m.startsWith(`${PROPAGATED}/${NAME}/mnt/`)), `a layer is mounted under ${PROPAGATED}/${NAME}: ${mounted.join(' ')}`);
        // The device is mounted at <Home>/mnt/<id>; Dir is its rootfs directory.
        const onHost = await propagatedMounts();
        assert.ok(onHost.some((m) => m.includes(`/${NAME}/mnt/`)), `the running container's layer is mounted on the host under the plugin's propagated mount: ${onHost.join(' ')}`);

        const killed = await pluginPid();
        assert.ok(killed !== null, 'the plugin process runs before the kill');
        process.kill(killed, 'SIGKILL');
        await waitUntil('dockerd to restart the plugin', async () => {
          const pid = await pluginPid();
          return pid !== null && pid !== killed && (await inspectPlugin(NAME)).Enabled;
        }, 120_000);

        assert.equal(await run('bb:two', 'busybox', 'cat', '/newfile'), 'data');
        assert.equal((await docker('start', '-a', 'keeper')).trim(), 'kept\nkept\nkept');
        // The container that ran through the crash keeps running, with its layer
        // still mounted on the host: exec and commit work; removing it unmounts its volumes.
        assert.equal((await docker('inspect', '--format', '{{.State.Running}}', 'runner')).trim(), 'true');
        assert.equal((await docker('exec', 'runner', 'cat', '/work')).trim(), 'before');
        await docker('commit', 'runner', 'bb:crash');
        assert.equal(await run('bb:crash', 'cat', '/work'), 'before');
        await docker('rm', '-f', 'runner');
        assert.equal(await volumeFiles(), 'plain\nbefore\nthin\nbefore');
        assert.deepEqual((await docker('volume', 'ls', '-q')).trim().split('\n').sort(), ['plainvol', 'thinvol']);
        await pluginMounts();
      });
    });
  }
});
