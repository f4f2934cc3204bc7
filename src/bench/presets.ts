/**
 * The `shadowfs bench` presets: fio job files in fixtures/fio/presets/, each with small default
 * sizes (a preset runs in about 10-20 s) and the environment its job file reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PRESET_NAMES = ['seq', 'rand', 'zipf', 'shift', 'failover'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  name: PresetName;
  describe: string;
  /** Bytes of the file (or of the whole file set, for zipf). */
  defaultSizeBytes: number;
  /** Seconds per job (a job file with several sections runs each for this long). */
  defaultRuntimeSeconds: number;
}

const MIB = 1024 * 1024;

export const PRESETS: Record<PresetName, Preset> = {
  seq: { name: 'seq', describe: '1 MiB sequential reads, then writes, of one file', defaultSizeBytes: 64 * MIB, defaultRuntimeSeconds: 5 },
  rand: { name: 'rand', describe: '4 KiB random reads, then writes, of one file', defaultSizeBytes: 32 * MIB, defaultRuntimeSeconds: 5 },
  zipf: { name: 'zipf', describe: '4 KiB reads of 8 files, zipf:1.2 skew over files and offsets', defaultSizeBytes: 32 * MIB, defaultRuntimeSeconds: 10 },
  shift: { name: 'shift', describe: 'a hot set that moves: 4 KiB random reads of one quarter of a file, then another, then another', defaultSizeBytes: 32 * MIB, defaultRuntimeSeconds: 3 },
  failover: { name: 'failover', describe: '4 KiB random writes, each block read back and checked (crc32c, fatal on mismatch)', defaultSizeBytes: 16 * MIB, defaultRuntimeSeconds: 10 },
};

/** Where the job files are: fixtures/fio/presets/ of this tree (dist/src/bench → repo root). */
export const PRESET_DIR = path.resolve(__dirname, '../../../fixtures/fio/presets');

export function presetJobFile(name: PresetName): string {
  return path.join(PRESET_DIR, `${name}.fio`);
}

/** The sections of a job file other than [global], in order: `shadowfs bench` runs one at a time. */
export function jobSections(jobFileText: string): string[] {
  const sections: string[] = [];
  for (const line of jobFileText.split('\n')) {
    const m = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (m && m[1] !== 'global') sections.push(m[1]);
  }
  return sections;
}

export function readJobSections(name: PresetName): string[] {
  return jobSections(fs.readFileSync(presetJobFile(name), 'utf8'));
}

const ALIGN_BYTES = 4096;

/** The environment the job files read (see the comment at the top of each). */
export function presetEnv(dir: string, sizeBytes: number, runtimeSeconds: number): Record<string, string> {
  const fraction = (num: number, den: number): string => String(Math.floor((sizeBytes * num) / den / ALIGN_BYTES) * ALIGN_BYTES);
  return {
    BENCH_DIR: dir,
    BENCH_SIZE: String(sizeBytes),
    BENCH_SIZE_1_4: fraction(1, 4),
    BENCH_SIZE_3_4: fraction(3, 4),
    BENCH_RUNTIME: String(runtimeSeconds),
  };
}
