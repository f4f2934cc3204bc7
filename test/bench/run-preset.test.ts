/**
 * runPreset leaves the volume as it found it: its files and the `.shadowfs-bench` directory it made
 * are gone afterwards, while anything that was there before stays. Runs real fio (1 s per job) on a
 * plain directory standing in for the mount; the mount's status is a fixed stand-in.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StatusReport } from '../../src/control/protocol';
import { fioVersion } from '../../src/bench/fio-process';
import { PRESETS } from '../../src/bench/presets';
import { benchDirectory, runPreset, type PresetRun } from '../../src/bench/run-preset';
import { tempDir } from '../helpers/temp-dir';

/** No reads served, no tiers: all runPreset reads of a status. */
const QUIET_STATUS = { served: [], tiers: [] } as unknown as StatusReport;

function runIn(mountpoint: string, over: Partial<PresetRun> = {}): PresetRun {
  return { mountpoint, preset: PRESETS.rand, fioVersion: fioVersion(), sizeBytes: 1024 * 1024, runtimeSeconds: 1, keepFiles: false, status: async () => QUIET_STATUS, ...over };
}

t.test('a run removes the .shadowfs-bench directory it made', async (t) => {
  const volume = await tempDir(t, 'shadowfs-bench-run-');
  fs.writeFileSync(path.join(volume, 'user-file'), 'mine');
  const report = await runPreset(runIn(volume));
  t.equal(report.jobs.length, 2, 'both rand jobs ran');
  t.same(fs.readdirSync(volume), ['user-file'], 'nothing of the bench is left in the volume');
});

t.test('a .shadowfs-bench that was there before, or holds other files, stays', async (t) => {
  const volume = await tempDir(t, 'shadowfs-bench-run-');
  const kept = path.join(volume, '.shadowfs-bench', 'seq', 'seq.dat');
  fs.mkdirSync(path.dirname(kept), { recursive: true });
  fs.writeFileSync(kept, 'an earlier --keep-files run');
  await runPreset(runIn(volume));
  t.ok(fs.existsSync(kept), "another preset's kept files stay");
  t.notOk(fs.existsSync(benchDirectory(volume, 'rand')), "this run's files are gone");

  fs.rmSync(path.join(volume, '.shadowfs-bench', 'seq'), { recursive: true });
  await runPreset(runIn(volume));
  t.ok(fs.existsSync(path.join(volume, '.shadowfs-bench')), 'an empty .shadowfs-bench this run did not make stays');
});

t.test('--keep-files keeps them all', async (t) => {
  const volume = await tempDir(t, 'shadowfs-bench-run-');
  await runPreset(runIn(volume, { keepFiles: true }));
  t.ok(fs.existsSync(path.join(benchDirectory(volume, 'rand'), 'rand.dat')));
});
