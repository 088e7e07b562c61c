// dmthin's tar reader against Go's archive/tar (Go 1.19, dockerd 20.10's):
// every tar of the corpus, and seeded mutations of them, must list the
// same entries (headers, PAX records, body hashes) and fail with the same
// Go error. Prints the agreement figures.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isRoot, skipBecause } from '../support/env';
import { goMissing, goTarview, goTarViews } from '../support/go-tarview';
import { tarCorpus } from '../support/tar-corpus';
import { fuzzTars, FUZZ_CI_CASES } from '../support/tar-fuzz';
import { applyInSandbox } from '../support/tar-fuzz-apply';
import { tarViewOf } from '../support/tar-view';
import { viewDifference } from '../support/tar-view-compare';

describe('tar reader against Go archive/tar', function () {
  this.timeout(600_000);
  let dir = '';

  before(function () {
    const missing = goMissing();
    if (missing) skipBecause(this, missing);
    goTarview();
    dir = mkdtempSync('/var/tmp/dmthin-tar-differential.');
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists every tar of the corpus as Go does', () => {
    const corpus = tarCorpus();
    const files = corpus.map((t, i) => {
      const file = path.join(dir, `${i}.tar`);
      writeFileSync(file, t.bytes);
      return file;
    });
    const goViews = goTarViews(files);
    const disagreements: string[] = [];
    corpus.forEach((t, i) => {
      const ours = tarViewOf(t.bytes);
      const difference = viewDifference(goViews[i] as (typeof goViews)[number], ours.view, ours.beyondGo !== null);
      if (difference) disagreements.push(`${t.name}: ${difference}`);
      else if ((ours.beyondGo !== null) !== (t.divergence !== undefined)) {
        disagreements.push(`${t.name}: ${ours.beyondGo ? `refused beyond Go: ${ours.beyondGo.message}` : `expected the documented divergence (${t.divergence})`}`);
      }
    });
    const divergent = corpus.filter((t) => t.divergence).length;
    process.stdout.write(`      ${corpus.length - disagreements.length}/${corpus.length} tars agree with Go (${divergent} of them documented refusals past 2^53)\n`);
    assert.deepEqual(disagreements, []);
  });

  it(`lists ${FUZZ_CI_CASES} seeded mutations of the corpus as Go does, each in bounded time, and applies each leaving everything outside the layer as it was`, async () => {
    if (!isRoot) process.stdout.write('      (not root: the fuzz cases are listed, not applied)\n');
    const report = await fuzzTars({
      cases: FUZZ_CI_CASES,
      seed: 20260813,
      dir,
      ...(isRoot ? { alsoCheck: (c) => applyInSandbox(c, dir) } : {}),
    });
    process.stdout.write(`      ${report.summary}\n`);
    assert.deepEqual(report.findings, []);
  });
});
