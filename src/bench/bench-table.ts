/** The `shadowfs bench` table: one row per job and direction, reads served by source on read rows. */
import { formatBytes } from '../util/units';
import type { FioDirectionResult } from './fio-json';
import type { BenchJobReport, BenchReport } from './run-preset';
import { formatServed } from '../control/served-by';

const MIB = 1024 * 1024;

function us(v: number | null): string {
  return v === null ? '–' : v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${Math.round(v)} µs`;
}

function cells(job: string, dir: 'read' | 'write', d: FioDirectionResult, served: string): string[] {
  return [job, dir, Math.round(d.iops).toString(), (d.bandwidthBytesPerSec / MIB).toFixed(1), us(d.p50LatencyUs), us(d.p99LatencyUs), served];
}

/** "rand-read  read  1234 IOPS  4.8 MiB/s  p50 80 µs  p99 1.2 ms  nvme 62% · live 38%" as a line. */
export function formatJobLine(job: BenchJobReport): string {
  const parts: string[] = [];
  for (const dir of ['read', 'write'] as const) {
    const d = job[dir];
    if (d) parts.push(`${dir} ${Math.round(d.iops)} IOPS ${(d.bandwidthBytesPerSec / MIB).toFixed(1)} MiB/s p50 ${us(d.p50LatencyUs)} p99 ${us(d.p99LatencyUs)}`);
  }
  const served = job.read ? `; reads served by ${formatServed(job.servedBy)}` : '';
  return `${job.name}: ${parts.join(', ') || 'no I/O'}${served}`;
}

export function formatBenchTable(r: BenchReport): string {
  const head = ['job', 'rw', 'IOPS', 'MiB/s', 'p50', 'p99', 'reads served by'];
  const rows: string[][] = [];
  for (const job of r.jobs) {
    if (job.read) rows.push(cells(job.name, 'read', job.read, formatServed(job.servedBy)));
    if (job.write) rows.push(cells(job.name, 'write', job.write, job.read ? '' : '–'));
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]): string => row.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [
    `shadowfs bench ${r.preset} on ${r.mountpoint}: ${r.describe}`,
    `${formatBytes(r.sizeBytes)}, ${r.runtimeSeconds} s per job, ${r.fio}`,
    '',
    line(head),
    ...rows.map(line),
    '',
    `reads of the whole preset served by: ${formatServed(r.servedBy)}`,
  ].join('\n');
}
