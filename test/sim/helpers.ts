import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ExtentRef } from '../../src/tiers/tier';
import { emptyBucket, type IoBucket } from '../../src/predict/volume-series';
import type { CompactTrace } from '../../src/sim/compact-trace';

export const MiB = 1024 * 1024;

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `shadowfs-${prefix}-`));
}

export function writeTemp(dir: string, name: string, text: string | Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A compact trace from (extent index, time) pairs on one file, without going through a file. */
export function compact(accesses: Array<[number, number]>): CompactTrace {
  const refs: ExtentRef[] = [];
  const idOf = new Map<number, number>();
  const ids: number[] = [];
  const times: number[] = [];
  const seconds = new Map<number, IoBucket>();
  let prev = -1;
  let max = 0;
  for (const [index, timeUs] of accesses) {
    let id = idOf.get(index);
    if (id === undefined) {
      id = refs.length;
      refs.push({ fileId: 'f', index });
      idOf.set(index, id);
    }
    max = Math.max(max, index + 1);
    const sec = Math.floor(timeUs / 1e6);
    const b = seconds.get(sec) ?? emptyBucket();
    b.readOps++;
    b.readBytes += MiB;
    seconds.set(sec, b);
    if (id === prev) continue;
    prev = id;
    ids.push(id);
    times.push(timeUs);
  }
  return {
    length: ids.length,
    extentIds: Uint32Array.from(ids),
    timesUs: Float64Array.from(times),
    writes: new Uint8Array(ids.length),
    refs,
    fileExtents: new Map([['f', max]]),
    seconds,
    requests: accesses.length,
    rawExtentAccesses: accesses.length,
    firstUs: times[0] ?? 0,
    lastUs: times[times.length - 1] ?? 0,
    summary: { lines: accesses.length, records: accesses.length, skippedLines: 0, bytesRead: 0, totalBytes: 0 },
  };
}

/** Deterministic shuffle. */
export function shuffled<T>(a: readonly T[], seed: number): T[] {
  const out = a.slice();
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
