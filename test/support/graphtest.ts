// The graphtest binary (test/go/graphtest, built by test/go/build into
// dist/go/): moby 20.10.24's graphtest conformance tests and benchmarks,
// run on dmthin through moby's GraphDriver plugin proxy or on Docker's
// in-tree devicemapper driver. Listing, running and reading its output,
// for the VM test and the benchmark.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** dist/go/graphtest.test, next to dist/test/. */
export const GRAPHTEST_BINARY = path.join(__dirname, '..', '..', 'go', 'graphtest.test');

/** Which driver the binary tests: dmthin through the plugin proxy, or the in-tree one. */
export type GraphtestDriver = 'dmthin' | 'devicemapper';

/** Why the binary cannot run here, or null. */
export function graphtestMissing(): string | null {
  if (existsSync(GRAPHTEST_BINARY)) return null;
  return `${GRAPHTEST_BINARY} is missing: build it on the host with \`bash test/go/build\` (scripts/setup --test and npm run test:vm do)`;
}

/** The names of the binary's tests or benchmarks matching a Go regexp (`-test.list`). */
export function listGraphtest(pattern: string): string[] {
  const listed = spawnSync(GRAPHTEST_BINARY, ['-test.list', pattern], { encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`${GRAPHTEST_BINARY} -test.list failed: ${listed.stderr || listed.stdout}`);
  return listed.stdout.split('\n').filter((l) => /^(Test|Benchmark)\w+$/.test(l));
}

export interface GraphtestRun {
  driver: GraphtestDriver;
  /** dm.* options given to the driver's Init, as dockerd's --storage-opt */
  options: string[];
  /** where graphtest makes its driver roots (the in-tree driver's loop files go there) */
  tmpDir: string;
  /** dmthin's socket, for the dmthin driver */
  socket?: string;
}

export interface GraphtestResult {
  code: number | null;
  /** stdout and stderr as they came */
  output: string;
  /** stdout alone: Go's test and benchmark lines, without the drivers' log lines */
  stdout: string;
}

/** Runs the binary with `args` (-test.run, -test.bench, ...); resolves with its exit code and output. */
export function runGraphtest(run: GraphtestRun, args: string[]): Promise<GraphtestResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DMTHIN_GRAPHTEST_DRIVER: run.driver,
    DMTHIN_GRAPHTEST_OPTS: run.options.join(' '),
    TMPDIR: run.tmpDir,
  };
  if (run.socket !== undefined) env['DMTHIN_GRAPHTEST_SOCKET'] = run.socket;
  const child = spawn(GRAPHTEST_BINARY, args, { env, cwd: run.tmpDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output, stdout }));
  });
}

/** What `-test.v` says of one Go test: PASS, FAIL or SKIP, or null when it never said. */
export function goTestOutcome(output: string, test: string): 'PASS' | 'FAIL' | 'SKIP' | null {
  const m = new RegExp(`^\\s*--- (PASS|FAIL|SKIP): ${test} `, 'm').exec(output);
  return (m?.[1] as 'PASS' | 'FAIL' | 'SKIP' | undefined) ?? null;
}

/** ns/op of each benchmark in `go test -bench` output, by name without "Benchmark" and the -GOMAXPROCS suffix. */
export function parseBenchmarks(output: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const m of output.matchAll(/^Benchmark(\w+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns\/op/gm)) {
    found.set(m[1] as string, Number(m[2]));
  }
  return found;
}
