/** The small checks every config section uses, so every message has one shape: key, expected, got. */
import { ShadowfsError } from '../util/errors';
import { parseDurationMs } from '../util/units';

/** Throws `config KEY: expected EXPECTED, got GOT` unless `cond`. */
export function expect(cond: boolean, key: string, expected: string, got: unknown): asserts cond {
  if (!cond) throw new ShadowfsError(`config ${key}: expected ${expected}, got ${JSON.stringify(got)}`);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every key of `raw` must be one of `known`; the message names the full key path. */
export function rejectUnknownKeys(raw: Record<string, unknown>, known: readonly string[], prefix: string): void {
  for (const k of Object.keys(raw)) expect(known.includes(k), `${prefix}${k}`, `one of ${known.join(', ')}`, k);
}

/**
 * A duration under a key whose name ends in Ms: a number is milliseconds (the unit is in the
 * name), a string is a duration like "30s", "5m" or "250ms".
 */
export function parseMsSetting(v: unknown, key: string): number {
  if (typeof v === 'number') {
    expect(Number.isFinite(v), key, 'milliseconds or a duration like 30s', v);
    return v;
  }
  expect(typeof v === 'string', key, 'milliseconds or a duration like 30s', v);
  return parseDurationMs(v, `config ${key}`);
}
