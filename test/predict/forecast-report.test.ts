/** `shadowfs forecast` data: forecast vs actual per horizon, with times and MASE, live and from a trace. */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PredictionEngine } from '../../src/predict/engine';
import { forecastReport, horizonLabel, parseHorizon } from '../../src/predict/forecast-report';
import { WorkloadHistory } from '../../src/predict/history';
import { forecastTrace } from '../../src/sim/forecast-trace';

const MIN_US = 60e6;
/** Requests in minute m: a ramp that repeats every 30 minutes, so every window's mean is known. */
const perMinute = (m: number): number => 60 + 6 * (m % 30);

t.test('forecast vs actual from a running engine', async (t) => {
  const history = WorkloadHistory.inMemory();
  const engine = new PredictionEngine(history, { extentSizeBytes: 1 << 20 });
  const start = 29_000_000; // a Unix minute
  const minutes = 150;
  for (let m = 0; m < minutes; m++) {
    const n = perMinute(m);
    for (let k = 0; k < n; k++) history.recordRequest((start + m) * MIN_US + (k * MIN_US) / n, k % 4 === 0 ? 'W' : 'R', 8192, 500);
    engine.tick((start + m + 1) * MIN_US);
  }
  t.equal(engine.lastFedMinute, start + minutes - 1);
  const r = forecastReport('vol', engine.forecaster, engine.lastFedMinute, { points: 5 });
  t.equal(r.minutesSeen, minutes);
  t.equal(r.asOfMs, (start + minutes) * 60_000);
  t.same(r.horizons.map((h) => h.horizon), ['1m', '10m', '1h']);
  const h1 = r.horizons[0];
  t.equal(h1.points.length, 5);
  t.equal(h1.scoredPoints, minutes - 1);
  for (const p of h1.points) {
    const m = p.fromMs / 60_000 - start;
    t.equal(p.toMs - p.fromMs, 60_000, 'a 1-minute window');
    t.ok(Math.abs(p.actual.iops - perMinute(m) / 60) < 1e-9, `actual IOPS of minute ${m} is what was recorded`);
    t.ok(Math.abs(p.actual.bytesPerS - (perMinute(m) * 8192) / 60) < 1e-6, 'actual throughput too');
    t.ok(Math.abs(p.actual.latencyUs - 500) < 1e-9, 'and latency');
    t.ok(Number.isFinite(p.forecast.iops) && Number.isFinite(p.naive.iops), 'forecast and naive side by side');
  }
  t.equal(h1.points[4].toMs, r.asOfMs, 'the newest scored window ends at the newest complete minute');
  t.ok(h1.next && h1.next.fromMs === r.asOfMs && h1.next.toMs === (r.asOfMs ?? 0) + 60_000, 'the next forecast starts now');
  t.ok(h1.mase.iops !== null && h1.mase.iops > 0, `MASE at 1 min: ${h1.mase.iops}`);
  const h60 = r.horizons[2];
  t.equal(h60.points[h60.points.length - 1].toMs - h60.points[h60.points.length - 1].fromMs, 3_600_000);
  t.equal(forecastReport('vol', engine.forecaster, engine.lastFedMinute, { horizons: [10] }).horizons.length, 1);
  t.equal(parseHorizon('1h'), 60);
  t.equal(parseHorizon('10m'), 10);
  t.equal(horizonLabel(60), '1h');
});

t.test('forecast over a trace in virtual time', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shadowfs-fc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  for (let m = 0; m < 90; m++) {
    const n = perMinute(m);
    for (let k = 0; k < n; k++) lines.push(`${Math.round(m * MIN_US + (k * MIN_US) / n)},${(k % 64) * 65536},4096,R`);
  }
  const file = path.join(dir, 't.csv');
  writeFileSync(file, lines.join('\n') + '\n');
  const r = await forecastTrace(file, 'csv', { points: 3 });
  t.equal(r.minutesSeen, 90, 'every minute of the trace, the last one included');
  t.equal(r.asOfMs, 90 * 60_000);
  const last = r.horizons[0].points[2];
  t.equal(last.fromMs, 89 * 60_000);
  t.ok(Math.abs(last.actual.iops - perMinute(89) / 60) < 1e-9);
  t.ok(r.horizons[1].mase.iops !== null, 'MASE at 10 min');
  writeFileSync(file, '0,0,4096,R\n1000,4096,many,R\n');
  await t.rejects(forecastTrace(file, 'csv'), /t\.csv:2:/, 'a malformed line names file and line');
});
