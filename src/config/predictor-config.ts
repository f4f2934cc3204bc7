/** The `predictor` section of the volume config: knobs of predictive placement (placement: predictive). */
import { expect, isRecord, parseMsSetting, rejectUnknownKeys } from './check';

export interface PredictorConfig {
  /** How often a planning round runs: candidates predicted, planned, copies requested. */
  planIntervalMs: number;
}

export const DEFAULT_PLAN_INTERVAL_MS = 2_000;

export function parsePredictorConfig(raw: unknown): PredictorConfig {
  if (raw === undefined) return { planIntervalMs: DEFAULT_PLAN_INTERVAL_MS };
  expect(isRecord(raw), 'predictor', 'an object of predictor settings', raw);
  rejectUnknownKeys(raw, ['planIntervalMs'], 'predictor.');
  const planIntervalMs = raw.planIntervalMs === undefined ? DEFAULT_PLAN_INTERVAL_MS : parseMsSetting(raw.planIntervalMs, 'predictor.planIntervalMs');
  expect(planIntervalMs >= 100 && planIntervalMs <= 3_600_000, 'predictor.planIntervalMs', 'a duration from 100ms to 1h', raw.planIntervalMs);
  return { planIntervalMs };
}
