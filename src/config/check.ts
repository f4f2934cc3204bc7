/** The small checks every config section uses, so every message has one shape: key, expected, got. */
import { ShadowfsError } from '../util/errors';
import { parseBytes, parseDurationMs } from '../util/units';

/** A value as the user wrote it (a missing key and NaN from a flag like --admit-after abc read as themselves). */
function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v);
}

/** Throws `config KEY: expected EXPECTED, got GOT` unless `cond`. */
export function expect(cond: boolean, key: string, expected: string, got: unknown): asserts cond {
  if (!cond) throw new ShadowfsError(`config ${key}: expected ${expected}, got ${shown(got)}`);
}

/** A size: bytes as a number, or a string like "20GiB" (not an object shown as "[object Object]"). */
export function parseSizeSetting(v: unknown, key: string): number {
  expect(typeof v === 'string' || typeof v === 'number', key, 'a size like 20GiB', v);
  return parseBytes(v, `config ${key}`);
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
