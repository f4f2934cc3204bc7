/**
 * Reading fio's `--output-format=json`: the few numbers the benchmark table needs (per direction,
 * IOPS, bandwidth and completion latency, summed over the group; jobs run with group_reporting, so
 * there is normally one entry and several are added up in case someone drops it), and per job the
 * numbers `shadowfs bench` prints (with p50/p99 completion latency).
 */
import * as fs from 'node:fs';

interface FioDirection {
  io_bytes: number;
  total_ios?: number;
  bw_bytes: number;
  iops: number;
  runtime: number;
  clat_ns?: { mean: number; percentile?: Record<string, number> };
}

interface FioJob {
  jobname: string;
  error: number;
  /** Milliseconds the job ran. */
  job_runtime?: number;
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

/** fio's JSON, tolerating text fio printed before it; a job that reported an error throws. */
function parseFioOutput(text: string): FioOutput {
  const start = text.indexOf('{');
  if (start < 0) throw new Error('no JSON object in fio output');
  const out = JSON.parse(text.slice(start)) as FioOutput;
  if (!Array.isArray(out.jobs) || out.jobs.length === 0) throw new Error('fio output has no jobs');
  const failed = out.jobs.find((j) => j.error !== 0);
  if (failed) throw new Error(`fio job ${failed.jobname} reported error ${failed.error}`);
  return out;
}

/** One direction of one fio job; latencies are completion latencies (clat). */
export interface FioDirectionResult {
  ios: number;
  iops: number;
  bandwidthBytesPerSec: number;
  p50LatencyUs: number | null;
  p99LatencyUs: number | null;
}

export interface FioJobResult {
  jobName: string;
  /** null when the job did no I/O in that direction. */
  read: FioDirectionResult | null;
  write: FioDirectionResult | null;
}

function directionResult(d: FioDirection, jobRuntimeMs: number | undefined): FioDirectionResult | null {
  const ios = d.total_ios ?? (d.io_bytes > 0 ? 1 : 0);
  if (ios === 0 || d.io_bytes === 0) return null;
  // fio gives verify reads no runtime, hence no IOPS or bandwidth: rate them over the job's runtime.
  const unrated = d.runtime === 0 && jobRuntimeMs !== undefined && jobRuntimeMs > 0;
  const iops = unrated ? ios / (jobRuntimeMs / 1000) : d.iops;
  const bandwidthBytesPerSec = unrated ? d.io_bytes / (jobRuntimeMs / 1000) : d.bw_bytes;
  const pct = (key: string): number | null => {
    const ns = d.clat_ns?.percentile?.[key];
    return ns === undefined ? null : ns / 1000;
  };
  return { ios, iops, bandwidthBytesPerSec, p50LatencyUs: pct('50.000000'), p99LatencyUs: pct('99.000000') };
}

/** Every job of a fio run with its read and write numbers. */
export function fioJobResults(text: string): { fioVersion: string; jobs: FioJobResult[] } {
  const out = parseFioOutput(text);
  return {
    fioVersion: out['fio version'],
    jobs: out.jobs.map((j) => ({ jobName: j.jobname, read: directionResult(j.read, j.job_runtime), write: directionResult(j.write, j.job_runtime) })),
  };
}

/** Parses fio's JSON (tolerating text fio printed before it) and sums the busier direction. */
export function summariseFio(text: string): FioSummary {
  const out = parseFioOutput(text);
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
