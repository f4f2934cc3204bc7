/**
 * The `watchdog` section of the volume config: whether the live volume is watched, how often it is
 * actively probed, and the health model's thresholds (the names and defaults of HealthSettings).
 */
import { DEFAULT_HEALTH_SETTINGS, HealthSettings, resolveHealthSettings } from '../health/health-settings';
import { ShadowfsError } from '../util/errors';
import { expect, isRecord, parseMsSetting, rejectUnknownKeys } from './check';

export interface WatchdogConfig {
  /** Off: no probes, no health judgement of the live volume, no automatic failover. */
  enabled: boolean;
  /** Interval of the active probes of the live volume. */
  probeIntervalMs: number;
  health: HealthSettings;
}

export const DEFAULT_PROBE_INTERVAL_MS = 1_000;
const MIN_PROBE_INTERVAL_MS = 10;
const MAX_PROBE_INTERVAL_MS = 3_600_000;

const HEALTH_KEYS = Object.keys(DEFAULT_HEALTH_SETTINGS) as (keyof HealthSettings)[];
/** Settings that count things (the rest are durations in ms or ratios). */
const COUNT_KEYS = new Set<keyof HealthSettings>(['minErrorsForRate', 'minSamples', 'minProbesForFailback', 'transitionLogSize']);

export function defaultWatchdogConfig(): WatchdogConfig {
  return { enabled: true, probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS, health: resolveHealthSettings() };
}

export function parseWatchdogConfig(raw: unknown): WatchdogConfig {
  if (raw === undefined) return defaultWatchdogConfig();
  expect(isRecord(raw), 'watchdog', 'an object of watchdog settings', raw);
  rejectUnknownKeys(raw, ['enabled', 'probeIntervalMs', ...HEALTH_KEYS], 'watchdog.');
  const enabled = raw.enabled ?? true;
  expect(typeof enabled === 'boolean', 'watchdog.enabled', 'true or false', enabled);
  const probeIntervalMs = raw.probeIntervalMs === undefined ? DEFAULT_PROBE_INTERVAL_MS : parseMsSetting(raw.probeIntervalMs, 'watchdog.probeIntervalMs');
  expect(probeIntervalMs >= MIN_PROBE_INTERVAL_MS && probeIntervalMs <= MAX_PROBE_INTERVAL_MS, 'watchdog.probeIntervalMs', 'a duration from 10ms to 1h', raw.probeIntervalMs);
  const partial: Partial<HealthSettings> = {};
  for (const k of HEALTH_KEYS) {
    const v = raw[k];
    if (v === undefined) continue;
    const key = `watchdog.${k}`;
    if (k.endsWith('Ms')) partial[k] = parseMsSetting(v, key);
    else if (COUNT_KEYS.has(k)) {
      expect(typeof v === 'number' && Number.isInteger(v) && v >= 0, key, 'a whole number >= 0', v);
      partial[k] = v;
    } else {
      expect(typeof v === 'number' && Number.isFinite(v), key, 'a number', v);
      partial[k] = v;
    }
  }
  return { enabled, probeIntervalMs, health: resolveHealth(partial) };
}

/** resolveHealthSettings checks ranges and how settings relate; its messages get the key path. */
function resolveHealth(partial: Partial<HealthSettings>): HealthSettings {
  try {
    return resolveHealthSettings(partial);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const m = /^health setting (\w+): (.*)$/.exec(err.message);
    if (m) throw new ShadowfsError(`config watchdog.${m[1]}: ${m[2]}`);
    throw new ShadowfsError(`config watchdog: ${err.message.replace(/^health settings?:? ?/, '')}`);
  }
}
