/**
 * The few numbers the benchmark table needs from fio's `--output-format=json`: per direction,
 * IOPS, bandwidth and completion latency, summed over the group (jobs run with group_reporting,
 * so there is normally one entry; several are added up in case someone drops it).
 */
import * as fs from 'node:fs';

interface FioDirection {
  io_bytes: number;
  bw_bytes: number;
  iops: number;
  runtime: number;
  clat_ns?: { mean: number; percentile?: Record<string, number> };
}

interface FioJob {
  jobname: string;
  error: number;
  read: FioDirection;
  write: FioDirection;
}

interface FioOutput {
  'fio version': string;
  jobs: FioJob[];
}

export interface FioSummary {
  jobName: string;
  direction: 'read' | 'write';
  iops: number;
  bandwidthBytesPerSec: number;
  meanLatencyUs: number;
  p99LatencyUs: number | undefined;
}

/** Parses fio's JSON (tolerating text fio printed before it) and sums the busier direction. */
export function summariseFio(text: string): FioSummary {
  const start = text.indexOf('{');
  if (start < 0) throw new Error('no JSON object in fio output');
  const out = JSON.parse(text.slice(start)) as FioOutput;
  if (!Array.isArray(out.jobs) || out.jobs.length === 0) throw new Error('fio output has no jobs');
  const failed = out.jobs.find((j) => j.error !== 0);
  if (failed) throw new Error(`fio job ${failed.jobname} reported error ${failed.error}`);
  const bytes = (d: 'read' | 'write'): number => out.jobs.reduce((a, j) => a + j[d].io_bytes, 0);
  const direction = bytes('write') > bytes('read') ? 'write' : 'read';
  const dirs = out.jobs.map((j) => j[direction]);
  const iops = dirs.reduce((a, d) => a + d.iops, 0);
  // Latency: weighted by each job's share of the operations.
  const weight = (d: FioDirection): number => (iops > 0 ? d.iops / iops : 1 / dirs.length);
  const meanLatencyUs = dirs.reduce((a, d) => a + weight(d) * (d.clat_ns?.mean ?? 0), 0) / 1000;
  const p99s = dirs.map((d) => d.clat_ns?.percentile?.['99.000000']).filter((v): v is number => v !== undefined);
  return {
    jobName: out.jobs[0].jobname,
    direction,
    iops,
    bandwidthBytesPerSec: dirs.reduce((a, d) => a + d.bw_bytes, 0),
    meanLatencyUs,
    p99LatencyUs: p99s.length ? Math.max(...p99s) / 1000 : undefined,
  };
}

/** `node dist/src/bench/fio-json.js FILE`: one line, "<IOPS> IOPS <MiB/s> MiB/s", for progress output. */
if (require.main === module) {
  const text = fs.readFileSync(process.argv[2], 'utf8');
  try {
    const s = summariseFio(text);
    process.stdout.write(`${Math.round(s.iops)} IOPS, ${(s.bandwidthBytesPerSec / 1024 ** 2).toFixed(1)} MiB/s, mean ${Math.round(s.meanLatencyUs)} µs\n`);
  } catch (err) {
    process.stdout.write(`unreadable fio output: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
