#!/usr/bin/env node
// The dmthin command: `dmthin serve` (the default) runs the daemon; the
// other subcommands report on it and act on it. Only commander and this
// file load before the arguments are read, so --help and --version work
// without the native addon, the pool or any setting; each subcommand
// imports what it needs when it runs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { CliExit } from './cli/admin-client';
import { addAdminCommands } from './cli/admin-commands';
import { EXIT, exitCodeFor } from './cli/exit';
import { errorText } from './shared/errors';
import { addMigrateCommand } from './cli/migrate';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  const program = new Command('dmthin')
    .description('Device-mapper thin storage for Docker: layers (GraphDriver) and volumes (VolumeDriver) from one plugin')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show help for dmthin or a subcommand')
    .showHelpAfterError('(dmthin --help lists the subcommands)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: ${EXIT.OK} done (and healthy); ${EXIT.PROBLEM} a problem found or the command failed;
${EXIT.USAGE} bad usage; ${EXIT.UNREACHABLE} dmthin is not running (no answer on its socket).
Settings are DMTHIN_* environment variables (see README.md, Settings).`,
    );

  program
    .command('serve')
    .allowExcessArguments(false)
    .description('run the plugin daemon on DMTHIN_SOCKET (the default with no subcommand; what npm start and the managed plugin run)')
    .action(async () => {
      const { serveAsProcess } = await import('./main');
      await serveAsProcess();
    });

  addAdminCommands(program);
  addMigrateCommand(program);

  return program;
}

/** Runs the command line; resolves to the exit code (serve sets its own when it stops). */
export async function runCli(argv: readonly string[]): Promise<number | undefined> {
  const program = buildProgram();
  try {
    // No subcommand is `serve`: what npm start and older unit files run.
    await program.parseAsync(argv.length === 0 ? ['serve'] : argv, { from: 'user' });
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (err instanceof CliExit) {
      process.stderr.write(`dmthin: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`dmthin: ${errorText(err)}\n`);
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2)).then((code) => {
    if (code !== undefined) process.exitCode = code;
  });
}
