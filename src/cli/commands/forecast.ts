/**
 * `shadowfs forecast MOUNTPOINT | --trace FILE`: the volume forecast (IOPS, throughput, latency per
 * horizon) against what actually happened, and its error as MASE against seasonal naive.
 */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { parseHorizon, type ForecastReport, type MetricValues } from '../../predict/forecast-report';
import { forecastTrace } from '../../sim/forecast-trace';
import { DEFAULT_IOLOG_STEP_US, TRACE_FORMATS, type TraceFormat } from '../../sim/trace-reader';
import { ShadowfsError } from '../../util/errors';
import { formatBytes } from '../../util/units';
import { progress } from '../progress';
import { detectFormat } from './replay';

export interface ForecastArgs {
  mountpoint?: string;
  trace?: string;
  format?: string;
  horizon?: string;
  points: number;
  'iolog-step-us': number;
  json: boolean;
}

const HORIZON_CHOICES = ['1m', '10m', '1h'];

export const forecastCommand: CommandModule<object, ForecastArgs> = {
  command: 'forecast [mountpoint]',
  describe: 'Show the volume forecast (IOPS, throughput, latency) against what happened, and its error (MASE vs seasonal naive)',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', describe: 'A running shadowfs mount with --placement predictive' })
    .option('trace', { type: 'string', describe: 'Instead of a mount: forecast over a block trace in virtual time (plain or .gz)' })
    .option('format', { type: 'string', choices: TRACE_FORMATS as string[], describe: 'Trace format (see shadowfs replay); default: detected from the first line' })
    .option('horizon', { type: 'string', choices: HORIZON_CHOICES, describe: 'Only this horizon (default: all)' })
    .option('points', { type: 'number', default: 10, describe: 'Recent forecast windows to show per horizon' })
    .option('iolog-step-us', { type: 'number', default: DEFAULT_IOLOG_STEP_US, describe: 'fio-iolog only: virtual microseconds between consecutive I/Os' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' })
    .example('$0 forecast /mnt/data --horizon 10m', 'a live mount')
    .example('$0 forecast --trace fixtures/traces/sample.csv', 'a recorded workload')
    .epilog('MASE: mean absolute error of the forecasts over that of the seasonal-naive forecast (the same window one day earlier, or the last window before a day of history) on the same windows; below 1 is better than seasonal naive.') as unknown as Argv<ForecastArgs>,
  handler: async (args) => {
    if (!(Number.isInteger(args.points) && args.points >= 0)) throw new ShadowfsError(`--points: expected a whole number >= 0, got ${args.points}`);
    const horizon = args.horizon === undefined ? undefined : parseHorizon(args.horizon);
    if (args.horizon !== undefined && horizon === undefined) throw new ShadowfsError(`--horizon: expected one of ${HORIZON_CHOICES.join(', ')}, got ${args.horizon}`);
    let report: ForecastReport;
    if (args.trace) {
      if (args.mountpoint) throw new ShadowfsError('give either a mount point or --trace, not both');
      const format = (args.format as TraceFormat | undefined) ?? (await detectFormat(args.trace));
      const bar = process.stderr.isTTY ? progress('forecast') : undefined;
      try {
        const r = await forecastTrace(args.trace, format, {
          reader: { iologStepUs: args['iolog-step-us'] },
          horizons: horizon === undefined ? undefined : [horizon],
          points: args.points,
          onProgress: (s) => bar?.update(s.bytesRead, s.totalBytes, 'reading trace'),
        });
        if (r.summary.truncated) process.stderr.write(`shadowfs: warning: ${r.summary.truncated}\n`);
        report = r;
      } finally {
        bar?.stop();
      }
    } else {
      if (!args.mountpoint) throw new ShadowfsError('give a mount point, or --trace FILE');
      report = (await controlRequest(path.resolve(args.mountpoint), { command: 'forecast', horizon, points: args.points })) as ForecastReport;
    }
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : formatForecast(report));
  },
};

const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
const num = (x: number | null): string => (x === null || !Number.isFinite(x) ? 'n/a' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const rate = (x: number): string => (Number.isFinite(x) ? `${formatBytes(x)}/s` : 'n/a');
const lat = (x: number): string => (Number.isFinite(x) && x > 0 ? `${x.toFixed(0)} µs` : '-');

export function formatForecast(r: ForecastReport): string {
  const lines: string[] = [];
  if (r.asOfMs === null) {
    return `${r.source}: no complete minute of I/O history yet; forecasts start after the first minute\n`;
  }
  lines.push(`${r.source}: ${r.minutesSeen} minutes of history, as of ${new Date(r.asOfMs).toISOString()}`);
  for (const h of r.horizons) {
    lines.push('');
    const next = h.next ? `next ${hhmm(h.next.fromMs)}-${hhmm(h.next.toMs)}: ${num(h.next.iops)} IOPS, ${rate(h.next.bytesPerS)}, latency ${lat(h.next.latencyUs)}` : 'no forecast yet';
    lines.push(`horizon ${h.horizon}: ${next}`);
    lines.push(`  MASE vs seasonal naive over ${h.scoredPoints} windows: IOPS ${num(h.mase.iops)}, throughput ${num(h.mase.bytesPerS)}, latency ${num(h.mase.latencyUs)}`);
    if (h.points.length === 0) {
      lines.push('  (no window has completed yet)');
      continue;
    }
    const row = (c: string[]): string => `  ${c[0].padEnd(12)} ${c[1].padStart(22)} ${c[2].padStart(32)} ${c[3].padStart(22)}`;
    lines.push(row(['window', 'IOPS fc / actual', 'throughput fc / actual', 'latency fc / actual']));
    const pair = (p: { forecast: MetricValues; actual: MetricValues }, m: keyof MetricValues, f: (x: number) => string): string => `${f(p.forecast[m])} / ${f(p.actual[m])}`;
    for (const p of h.points) {
      lines.push(row([`${hhmm(p.fromMs)}-${hhmm(p.toMs)}`, pair(p, 'iops', (x) => num(x)), pair(p, 'bytesPerS', rate), pair(p, 'latencyUs', lat)]));
    }
  }
  return lines.join('\n') + '\n';
}
