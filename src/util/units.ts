import { ShadowfsError } from './errors';

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, tib: 1024 ** 4,
};

/** Parse "20GiB", "512 MiB", "1048576", "1.5TB" into bytes; `what` names the setting in errors. */
export function parseBytes(input: string | number, what: string): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new ShadowfsError(`${what}: expected a size in bytes, got ${input}`);
    return Math.floor(input);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ShadowfsError(`${what}: expected a size like 512MiB, 20GiB or 1TB, got "${input}"`);
  }
  return Math.floor(Number(m[1]) * unit);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse "30s", "5m", "250ms", "1h" (a bare number is seconds) into milliseconds. */
export function parseDurationMs(input: string | number, what: string): number {
  if (typeof input === 'number') return input * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/.exec(input);
  if (!m) throw new ShadowfsError(`${what}: expected a duration like 30s, 5m or 250ms, got "${input}"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
}
