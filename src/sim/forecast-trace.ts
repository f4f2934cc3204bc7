import { PredictionEngine } from '../predict/engine';
import { forecastReport, type ForecastReport } from '../predict/forecast-report';
import { WorkloadHistory } from '../predict/history';
import { RESOLUTION_US, emptyBucket, type IoBucket } from '../predict/volume-series';
import { ShadowfsError } from '../util/errors';
import { TraceReader, type TraceFormat, type TraceReaderOptions, type TraceSummary } from './trace-reader';

/**
 * `shadowfs forecast --trace`: the volume forecaster of a live mount, fed a trace's requests minute
 * by minute in virtual time, so forecast quality can be judged on a recorded workload. Only the
 * per-second request counters are kept (not the accesses), so any trace length fits in memory.
 */
export interface TraceForecast extends ForecastReport {
  summary: TraceSummary;
}

export async function forecastTrace(
  file: string,
  format: TraceFormat,
  options: { reader?: TraceReaderOptions; horizons?: readonly number[]; points?: number; onProgress?: (s: TraceSummary) => void } = {},
): Promise<TraceForecast> {
  const reader = new TraceReader(file, format, options.reader);
  const history = WorkloadHistory.inMemory({ maxExtents: 1 });
  const engine = new PredictionEngine(history, { extentSizeBytes: 1 << 20, heat: { learn: false } });
  const minuteUs = RESOLUTION_US.minute;
  let clockUs = Number.NEGATIVE_INFINITY;
  let second = Number.NaN;
  let bucket: IoBucket = emptyBucket();
  let records = 0;
  const flushSecond = (): void => {
    if (Number.isNaN(second)) return;
    history.recordBucket(second * 1e6, bucket);
    bucket = emptyBucket();
  };
  for await (const r of reader.records()) {
    if (r.sizeBytes === 0) continue;
    // As in the replay: slightly out-of-order timestamps are taken at the latest time seen.
    clockUs = Math.max(clockUs, r.timeUs);
    const sec = Math.floor(clockUs / 1e6);
    if (sec !== second) {
      flushSecond();
      // Minutes completed before this record are fed to the forecaster.
      if (!Number.isNaN(second) && Math.floor(sec / 60) !== Math.floor(second / 60)) {
        const nowUs = Math.floor(clockUs / minuteUs) * minuteUs;
        for (let guard = 0; guard < 100 && engine.lastFedMinute < nowUs / minuteUs - 1; guard++) engine.tick(nowUs);
      }
      second = sec;
    }
    if (r.op === 'R') {
      bucket.readOps++;
      bucket.readBytes += r.sizeBytes;
    } else {
      bucket.writeOps++;
      bucket.writeBytes += r.sizeBytes;
    }
    if (r.latencyUs !== undefined) {
      bucket.latencySumUs += r.latencyUs;
      bucket.latencyCount++;
    }
    if (options.onProgress && ++records % 50_000 === 0) options.onProgress(reader.summary);
  }
  flushSecond();
  options.onProgress?.(reader.summary);
  if (!Number.isFinite(clockUs)) {
    const why = reader.summary.truncated ? ` (${reader.summary.truncated})` : '';
    throw new ShadowfsError(`trace ${file} has no I/O records${why}`);
  }
  // The minute holding the last record is complete too: the trace is over.
  const endUs = (Math.floor(clockUs / minuteUs) + 1) * minuteUs;
  // A tick catches up at most a day of minutes: tick until the last minute is in.
  for (let guard = 0; guard < 100 && engine.lastFedMinute < endUs / minuteUs - 1; guard++) engine.tick(endUs);
  return { ...forecastReport(file, engine.forecaster, engine.lastFedMinute, { horizons: options.horizons, points: options.points }), summary: reader.summary };
}
