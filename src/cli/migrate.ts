// `dmthin migrate`: the command line of src/migrate/migrate.ts.
import type { Command } from 'commander';

interface MigrateFlags {
  dataRoot: string;
  root?: string;
  driverName: string;
  thinpooldev?: string;
  dryRun?: boolean;
}

export function addMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .allowExcessArguments(false)
    .description("move a stopped dockerd's data root from Docker's in-tree devicemapper driver to dmthin, without copying layer data")
    .option('--data-root <dir>', "dockerd's --data-root", '/var/lib/docker')
    .option('--root <dir>', "dmthin's state directory, where the pool's loop files move (default: DMTHIN_ROOT, else dmthin's default root)")
    .option('--driver-name <name>', 'the storage driver name dockerd will use (-s NAME)', 'dmthin')
    .option('--thinpooldev <name>', 'the pool the devicemapper driver was given with dm.thinpooldev (default: its loop files)')
    .option('--dry-run', 'print what would be done and change nothing')
    .addHelpText(
      'after',
      `
Refuses, changing nothing, while dockerd or dmthin runs, when a device is missing or still active,
when the pool's transaction id disagrees with the metadata, or when the data root is not a
devicemapper one. Safe to run again: an interrupted run is finished (or, before its commit point,
started over). Prints how to go back.`,
    )
    .action(async (flags: MigrateFlags) => {
      // Loaded only now: --help must not load the native addon.
      const { migrate } = await import('../migrate/migrate');
      const { DEFAULT_ROOT } = await import('../config');
      await migrate({
        dataRoot: flags.dataRoot,
        root: flags.root ?? process.env['DMTHIN_ROOT'] ?? DEFAULT_ROOT,
        driverName: flags.driverName,
        thinPoolDevice: flags.thinpooldev ?? null,
        dryRun: flags.dryRun === true,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    });
}
