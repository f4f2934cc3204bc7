/**
 * Runs one `shadowfs bench` preset against a mount: each section of the preset's job file as a
 * fio run of its own, in order, with the mount's status read before and after each, so every job
 * gets its own "served by" (and the preset its total).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { StatusReport } from '../control/protocol';
import type { FioDirectionResult } from './fio-json';
import { runFioSection } from './fio-process';
import { Preset, presetEnv, presetJobFile, readJobSections } from './presets';
import { ServedShare, servedBetween } from '../control/served-by';

export interface BenchJobReport {
  name: string;
  read: FioDirectionResult | null;
  write: FioDirectionResult | null;
  /** Reads of this job by source; empty for a job that only wrote. */
  servedBy: ServedShare[];
}

export interface BenchReport {
  mountpoint: string;
  preset: string;
  describe: string;
  fio: string;
  sizeBytes: number;
  runtimeSeconds: number;
  /** Where the preset's files were (inside the mount). */
  directory: string;
  jobs: BenchJobReport[];
  /** All reads of the preset by source. */
  servedBy: ServedShare[];
}

export interface PresetRun {
  mountpoint: string;
  preset: Preset;
  fioVersion: string;
  sizeBytes: number;
  runtimeSeconds: number;
  keepFiles: boolean;
  status: () => Promise<StatusReport>;
  /** Stops the running fio job; the preset's files are still removed. */
  abort?: AbortSignal;
  onJobStart?: (index: number, total: number, name: string) => void;
  onJobDone?: (index: number, total: number, job: BenchJobReport) => void;
}

/** The preset's files live in a directory of their own inside the mount. */
export function benchDirectory(mountpoint: string, preset: string): string {
  return path.join(mountpoint, '.shadowfs-bench', preset);
}

export async function runPreset(run: PresetRun): Promise<BenchReport> {
  const { preset } = run;
  const dir = benchDirectory(run.mountpoint, preset.name);
  // The first directory mkdir made: `.shadowfs-bench` itself when this run made it.
  const made = await fs.mkdir(dir, { recursive: true });
  const jobFile = presetJobFile(preset.name);
  const sections = readJobSections(preset.name);
  const env = presetEnv(dir, run.sizeBytes, run.runtimeSeconds);
  const jobs: BenchJobReport[] = [];
  try {
    const first = await run.status();
    let before = first;
    for (const [i, section] of sections.entries()) {
      run.onJobStart?.(i, sections.length, section);
      const results = await runFioSection(jobFile, section, env, run.runtimeSeconds, run.abort);
      const after = await run.status();
      // A section is one job (group_reporting); should a job file ever add numjobs without it,
      // the first entry stands for the section.
      const r = results[0];
      const job: BenchJobReport = { name: section, read: r.read, write: r.write, servedBy: servedBetween(before, after) };
      jobs.push(job);
      run.onJobDone?.(i, sections.length, job);
      before = after;
    }
    return {
      mountpoint: run.mountpoint,
      preset: preset.name,
      describe: preset.describe,
      fio: run.fioVersion,
      sizeBytes: run.sizeBytes,
      runtimeSeconds: run.runtimeSeconds,
      directory: dir,
      jobs,
      servedBy: servedBetween(first, before),
    };
  } finally {
    if (!run.keepFiles) {
      await fs.rm(dir, { recursive: true, force: true });
      if (made !== undefined) await removeIfEmpty(path.dirname(dir), made);
    }
  }
}

/**
 * Removes `parent` (the bench directory every preset shares) if this run made it (`made` is it or
 * above it) and nothing else is in it now: a run leaves the volume as it found it. Another run's
 * kept files, or ones the user put there, keep it.
 */
async function removeIfEmpty(parent: string, made: string): Promise<void> {
  if (made !== parent && !parent.startsWith(made + path.sep)) return;
  try {
    await fs.rmdir(parent);
  } catch {
    // ENOTEMPTY: not only ours now; anything else: leaving an empty directory is no failure of the run.
  }
}
