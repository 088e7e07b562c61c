// `dmthin status`, `check` and `gc`: each asks the running daemon over its
// socket (src/admin/) and prints the answer as text, or as JSON with
// --json. The daemon answers under its own pool lock, so a command never
// races it; with no daemon, only `check --thin-check` has something to do.
import type { Command } from 'commander';
import type { CheckReport, GcReport, PoolGrowReport, Problem, SpaceUse, StatusReport } from '../admin/reports';
import { parseSize } from '../deviceset/options';
import { callAdmin, CliExit, daemonAnswers, socketPath } from './admin-client';
import { EXIT } from './exit';
import { thinCheckStoppedPool, type ThinCheckResult } from './thin-check';

/** config.ts's DEFAULT_ROOT (not imported: config.ts loads the native addon). */
const DEFAULT_ROOT = '/var/lib/dmthin';

interface CommonOptions {
  json?: boolean;
  socket?: string;
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Decimal units, as `docker info` shows the pool. */
function size(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)}${units[unit] ?? ''}`;
}

function spaceLine(s: SpaceUse): string {
  return `${size(s.used)} of ${size(s.total)} used (${s.percent}%), ${size(s.free)} free [${s.used} of ${s.total} bytes]`;
}

export function statusText(r: StatusReport): string {
  const lines = [`socket        ${r.socket}`, `state         ${r.root}`];
  if (r.pool === null) {
    lines.push(`pool          none: ${r.poolError}`);
    return lines.join('\n');
  }
  const p = r.pool;
  lines.push(
    `pool          ${p.name} (${p.kind}, mode ${p.mode}${p.needsCheck ? ', needs_check' : ''}, transaction ${p.transactionId})`,
    `health        ${p.health}${p.advice === '' ? '' : `: ${p.advice}`}`,
    `data          ${spaceLine(p.data)}`,
    `metadata      ${spaceLine(p.metadata)}`,
    `low-water     ${p.lowWaterMark.blocks} blocks of ${size(p.blockSize)} (${size(p.lowWaterMark.bytes)} free data)`,
  );
  if (p.dataFile !== '') lines.push(`data file     ${p.dataFile} on ${p.dataDevice}`, `metadata file ${p.metadataFile} on ${p.metadataDevice}`);
  else if (p.dataDevice !== '') lines.push(`data device   ${p.dataDevice}`, `metadata dev  ${p.metadataDevice}`);
  const d = r.devices;
  if (d !== null) {
    lines.push(
      `devices       base ${d.base}, layers ${d.layers}, containers ${d.containers}, volumes ${d.volumes}, snapshotter ${d.snapshotter}, orphans ${d.orphans}, faulty ${d.faulty}`,
      `mounted       ${d.mounted}`,
      `deferred deletions pending ${d.deferredDeletions}`,
    );
  }
  if (r.options !== null) {
    lines.push('options');
    for (const [key, value] of Object.entries(r.options)) lines.push(`  ${key} = ${JSON.stringify(value)}`);
  }
  return lines.join('\n');
}

function problemLine(p: Problem): string {
  return `${p.kind.padEnd(20)} ${p.object}: ${p.detail}${p.gc ? ' [dmthin gc removes it]' : ''}`;
}

export function checkText(r: CheckReport, thinCheck: ThinCheckResult | null): string {
  const lines: string[] = [];
  if (thinCheck !== null) {
    lines.push(`thin_check ${thinCheck.metadata}: ${thinCheck.ok ? 'ok' : `failed (exit ${thinCheck.exitCode})`}`);
    if (thinCheck.output !== '') lines.push(...thinCheck.output.split('\n').map((l) => `  ${l}`));
  } else {
    const c = r.checked;
    lines.push(`checked ${c.records} device records, ${c.thinIds} thin ids in the pool, ${c.activeDevices} active devices, ${c.mounts} mounts`);
  }
  lines.push(r.problems.length === 0 ? 'no problems found' : `${r.problems.length} problem(s):`);
  for (const p of r.problems) lines.push(`  ${problemLine(p)}`);
  return lines.join('\n');
}

export function gcText(r: GcReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? 'would remove' : 'removed';
  lines.push(r.removed.length === 0 ? `nothing to remove` : `${verb} ${r.removed.length}:`);
  for (const p of r.removed) lines.push(`  ${problemLine(p)}`);
  if (r.failed.length > 0) {
    lines.push(`could not remove ${r.failed.length}:`);
    for (const p of r.failed) lines.push(`  ${problemLine(p)}: ${p.error}`);
  }
  if (r.left.length > 0) {
    lines.push(`left for you (gc does not touch these; see dmthin check):`);
    for (const p of r.left) lines.push(`  ${problemLine(p)}`);
  }
  return lines.join('\n');
}

function addCommon(command: Command): Command {
  return command
    .option('--json', 'print the report as JSON')
    .option('-s, --socket <path>', "dmthin's socket (default: $DMTHIN_SOCKET, else /run/docker/plugins/dmthin.sock)")
    .allowExcessArguments(false);
}

export function addAdminCommands(program: Command): void {
  addCommon(
    program
      .command('status')
      .description('the thin pool (data and metadata use, low-water mark, health), devices by kind, deferred deletions, options in effect; exit 1 when the pool is unhealthy or missing'),
  ).action(async (options: CommonOptions) => {
    const report = await callAdmin<StatusReport>(socketPath(options.socket), 'Status');
    if (options.json === true) printJson(report);
    else print(statusText(report));
    process.exitCode = report.pool !== null && report.pool.health === 'ok' && (report.devices?.faulty ?? 0) === 0 ? EXIT.OK : EXIT.PROBLEM;
  });

  addCommon(
    program
      .command('check')
      .description('compare metadata with the pool: orphaned and faulty devices, stray device-mapper devices, stale mounts, pool health; changes nothing; exit 1 when a problem is found')
      .option('--thin-check', "run thin_check on a stopped pool's metadata instead (dmthin must not be running)")
      .option('--metadata <device>', 'with --thin-check: the metadata file or device (default: DMTHIN_ROOT/devicemapper/metadata)'),
  ).action(async (options: CommonOptions & { thinCheck?: boolean; metadata?: string }) => {
    const socket = socketPath(options.socket);
    let report: CheckReport;
    let thinCheck: ThinCheckResult | null = null;
    if (options.thinCheck === true) {
      if (await daemonAnswers(socket)) {
        throw new CliExit(EXIT.USAGE, `dmthin is running on ${socket}: thin_check needs the pool stopped. Stop dmthin first (systemctl stop dmthin, or docker plugin disable), or run dmthin check without --thin-check`);
      }
      thinCheck = await thinCheckStoppedPool(process.env['DMTHIN_ROOT'] ?? DEFAULT_ROOT, options.metadata);
      const problems: Problem[] = thinCheck.ok ? [] : [{ kind: 'thin-check', object: thinCheck.metadata, detail: `thin_check failed: ${thinCheck.output.split('\n')[0] ?? ''}; run thin_repair`, gc: false }];
      report = { problems, checked: { records: 0, thinIds: 0, activeDevices: 0, mounts: 0 } };
    } else {
      if (options.metadata !== undefined) throw new CliExit(EXIT.USAGE, '--metadata goes with --thin-check');
      report = await callAdmin<CheckReport>(socket, 'Check');
    }
    if (options.json === true) printJson(thinCheck === null ? report : { ...report, thinCheck });
    else print(checkText(report, thinCheck));
    process.exitCode = report.problems.length === 0 ? EXIT.OK : EXIT.PROBLEM;
  });

  addCommon(
    program
      .command('gc')
      .description('remove what check proves orphaned (thin devices no metadata names, volume devices no volume owns, stray device-mapper devices); exit 1 when something could not be removed')
      .option('-n, --dry-run', 'only say what would be removed'),
  ).action(async (options: CommonOptions & { dryRun?: boolean }) => {
    const report = await callAdmin<GcReport>(socketPath(options.socket), 'Gc', { DryRun: options.dryRun === true });
    if (options.json === true) printJson(report);
    else print(gcText(report));
    process.exitCode = report.failed.length === 0 ? EXIT.OK : EXIT.PROBLEM;
  });

  const pool = program.command('pool').description('act on the thin pool: grow');
  addCommon(
    pool
      .command('grow')
      .description("grow a loop-backed pool online (its files, loop devices and table); for an LVM pool, print the lvextend line that grows it")
      .option('--data <size>', 'the data file\'s new size (200G), or how much to add (+50G)')
      .option('--metadata <size>', 'the metadata file\'s new size, or how much to add (+1G)'),
  ).action(async (options: CommonOptions & { data?: string; metadata?: string }) => {
    if (options.data === undefined && options.metadata === undefined) throw new CliExit(EXIT.USAGE, 'pool grow: give --data SIZE and/or --metadata SIZE');
    for (const [flag, value] of [['--data', options.data], ['--metadata', options.metadata]] as const) {
      if (value === undefined) continue;
      try {
        parseSize(value.startsWith('+') ? value.slice(1) : value);
      } catch (err) {
        throw new CliExit(EXIT.USAGE, `pool grow ${flag}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const body = { ...(options.data === undefined ? {} : { Data: options.data }), ...(options.metadata === undefined ? {} : { Metadata: options.metadata }) };
    const report = await callAdmin<PoolGrowReport>(socketPath(options.socket), 'PoolGrow', body);
    if (options.json === true) printJson(report);
    else {
      print(
        [
          `pool      ${report.pool}`,
          `data      ${size(report.before.data)} -> ${size(report.after.data)} [${report.before.data} -> ${report.after.data} bytes] (${report.dataFile})`,
          `metadata  ${size(report.before.metadata)} -> ${size(report.after.metadata)} [${report.before.metadata} -> ${report.after.metadata} bytes] (${report.metadataFile})`,
        ].join('\n'),
      );
    }
  });
}
