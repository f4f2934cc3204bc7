/**
 * The volume configuration: one documented shape, validated with messages that name the key,
 * what was expected and what was found. Both the config file and the `mount` flags end here.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { ShadowfsError } from '../util/errors';
import { parseBytes, parseDurationMs } from '../util/units';
import { DEFAULT_COST_PER_GIB_MONTH, ObjectStoreSpec, TierClass, TierSpec, TIER_CLASS_RANK } from '../tiers/tier';
import { DEFAULT_WRITE_AROUND_AFTER_BYTES } from '../io/write-around';
import { expect, isRecord, parseSizeSetting } from './check';
import { parsePredictorConfig, PredictorConfig } from './predictor-config';
import { parseWatchdogConfig, WatchdogConfig } from './watchdog-config';

export type { WatchdogConfig } from './watchdog-config';
export type { PredictorConfig } from './predictor-config';

export type WriteMode = 'write-through';

export interface VolumeConfig {
  /** The live volume: the backing directory presented at the mount point. */
  livePath: string;
  /** Where metadata (the extent map) lives. */
  stateDir: string;
  /** Fixed per volume: changing it needs a fresh state directory. */
  extentSizeBytes: number;
  writeMode: WriteMode;
  /**
   * Write around cache copies once a handle has written this many bytes sequentially (0: never):
   * src/io/write-around.ts.
   */
  writeAroundAfterBytes: number;
  tiers: TierSpec[];
  /** Reactive admission: copy an extent to the fastest tier with room after this many reads. */
  admitAfterReads: number;
  /** The tier that holds a fresh copy of every extent (what makes failover lossless), if any. */
  coverageTier: string | undefined;
  /** How often the live tree is walked for extents without coverage. */
  coverageScanIntervalMs: number;
  /** A background scrub of every copy this long after the last one; null: none (src/shadow/scrub-schedule.ts). */
  scrubIntervalMs: number | null;
  /** The background scrub's read rate (an operator's `shadowfs scrub` is not held to it). */
  scrubBytesPerSec: number;
  /** Background copy bandwidth and parallelism. */
  copyBytesPerSec: number;
  concurrentCopies: number;
  /** Watch the live directory (chokidar) for changes made behind the mount's back. */
  watchLive: boolean;
  /** Who decides placement: reactive admission, or the prediction engine and planner. */
  placement: 'reactive' | 'predictive';
  /** Health judgement of the live volume: probes and thresholds. */
  watchdog: WatchdogConfig;
  /** Knobs of predictive placement (used when placement is predictive). */
  predictor: PredictorConfig;
}

export const DEFAULT_EXTENT_SIZE_BYTES = 1024 * 1024;
export const DEFAULT_ADMIT_AFTER_READS = 2;
export const DEFAULT_STATE_ROOT = '/var/lib/shadowfs';
const MIN_COVERAGE_SCAN_INTERVAL_MS = 1_000;
/** Weekly: reads check a copy once per mount, the scrub catches what rots after (src/shadow/scrub-schedule.ts). */
const DEFAULT_SCRUB_INTERVAL = '7d';
const MIN_SCRUB_INTERVAL_MS = 1_000;
/** A third of the default copyRate: the scrub only reads, and nothing waits for it. */
const DEFAULT_SCRUB_RATE = '64MiB';

/** The raw, user-written form (config file JSON, or assembled from flags). */
export interface RawVolumeConfig {
  live?: unknown;
  stateDir?: unknown;
  extentSize?: unknown;
  writeMode?: unknown;
  writeAroundAfter?: unknown;
  admitAfterReads?: unknown;
  tiers?: unknown;
  coverageTier?: unknown;
  coverageScanInterval?: unknown;
  scrubInterval?: unknown;
  scrubRate?: unknown;
  copyRate?: unknown;
  concurrentCopies?: unknown;
  watchLive?: unknown;
  placement?: unknown;
  watchdog?: unknown;
  predictor?: unknown;
}

const TIER_CLASSES = Object.keys(TIER_CLASS_RANK) as TierClass[];

/** How to give a tier, for the messages that refuse a volume without one. */
export const NEED_A_TIER = 'give one with --tier NAME=PATH,cap=SIZE, e.g. --tier nvme=/mnt/nvme/shadow,cap=20GiB, or "tiers" in the config file';

export function parseTier(raw: unknown, i: number): TierSpec {
  const key = `tiers[${i}]`;
  expect(isRecord(raw), key, 'an object with name, class, path, capacity', raw);
  const known = new Set(['name', 'class', 'path', 'capacity', 'costPerGiBMonth', 'object']);
  for (const k of Object.keys(raw)) expect(known.has(k), `${key}.${k}`, `one of ${[...known].join(', ')}`, k);
  const cls = raw.class ?? raw.name;
  if (raw.class === undefined && typeof raw.name === 'string' && !(TIER_CLASSES as string[]).includes(raw.name)) {
    throw new ShadowfsError(`config ${key}.class: expected ${TIER_CLASSES.join('|')}, got nothing (${raw.name} is not a class, so the tier needs one: ,class=ssd in --tier, "class": "ssd" in a config file)`);
  }
  expect(typeof cls === 'string' && (TIER_CLASSES as string[]).includes(cls), `${key}.class`, TIER_CLASSES.join('|'), cls);
  const tierClass = cls as TierClass;
  const name = raw.name ?? tierClass;
  expect(typeof name === 'string' && /^[a-zA-Z][\w-]{0,31}$/.test(name), `${key}.name`, 'a short name of letters, digits, - or _', name);
  const capacityBytes = parseSizeSetting(raw.capacity, `${key}.capacity`);
  expect(capacityBytes > 0, `${key}.capacity`, 'a size above zero', raw.capacity);
  const cost = raw.costPerGiBMonth ?? DEFAULT_COST_PER_GIB_MONTH[tierClass];
  expect(typeof cost === 'number' && cost >= 0, `${key}.costPerGiBMonth`, 'a number >= 0', cost);
  if (tierClass === 'object') {
    const object = parseObjectStore(raw.object, `${key}.object`);
    return { name, class: tierClass, path: object.cacheDir, capacityBytes, costPerGiBMonth: cost, object };
  }
  expect(raw.object === undefined, `${key}.object`, 'nothing (object store settings are for class object)', raw.object);
  expect(typeof raw.path === 'string' && raw.path.length > 0, `${key}.path`, 'a directory path', raw.path);
  return { name, class: tierClass, path: path.resolve(raw.path), capacityBytes, costPerGiBMonth: cost };
}

function parseObjectStore(raw: unknown, key: string): ObjectStoreSpec {
  expect(isRecord(raw), key, 'an object with endpoint, bucket, cacheDir, cacheCapacity', raw);
  const known = new Set(['endpoint', 'bucket', 'prefix', 'region', 'forcePathStyle', 'cacheDir', 'cacheCapacity']);
  for (const k of Object.keys(raw)) expect(known.has(k), `${key}.${k}`, `one of ${[...known].join(', ')}`, k);
  let url: URL | undefined;
  try {
    url = new URL(String(raw.endpoint));
  } catch {
    url = undefined;
  }
  expect(!!url && (url.protocol === 'http:' || url.protocol === 'https:'), `${key}.endpoint`, 'an http(s) URL like http://127.0.0.1:9000', raw.endpoint);
  expect(typeof raw.bucket === 'string' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw.bucket), `${key}.bucket`, 'an S3 bucket name', raw.bucket);
  const prefix = raw.prefix ?? '';
  expect(typeof prefix === 'string', `${key}.prefix`, 'a key prefix string', prefix);
  const region = raw.region ?? process.env.AWS_REGION ?? 'us-east-1';
  expect(typeof region === 'string', `${key}.region`, 'a region name', region);
  const forcePathStyle = raw.forcePathStyle ?? true;
  expect(typeof forcePathStyle === 'boolean', `${key}.forcePathStyle`, 'true or false', forcePathStyle);
  expect(typeof raw.cacheDir === 'string' && raw.cacheDir.length > 0, `${key}.cacheDir`, 'a local cache directory', raw.cacheDir);
  const cacheCapacityBytes = parseSizeSetting(raw.cacheCapacity ?? '1GiB', `${key}.cacheCapacity`);
  return { endpoint: String(raw.endpoint), bucket: raw.bucket, prefix, region, forcePathStyle, cacheDir: path.resolve(raw.cacheDir), cacheCapacityBytes };
}

function parsePlacement(v: unknown): 'reactive' | 'predictive' {
  expect(v === undefined || v === 'reactive' || v === 'predictive', 'placement', '"reactive" or "predictive"', v);
  return (v ?? 'reactive') as 'reactive' | 'predictive';
}

function parseWatchLive(v: unknown): boolean {
  expect(v === undefined || typeof v === 'boolean', 'watchLive', 'true or false', v);
  return v === true;
}

function parseScrubInterval(v: unknown): number | null {
  if (v === 'off' || v === false) return null;
  const given = v ?? DEFAULT_SCRUB_INTERVAL;
  expect(typeof given === 'string' || typeof given === 'number', 'scrubInterval', 'a duration like 7d, or "off"', v);
  const ms = parseDurationMs(given as string | number, 'config scrubInterval');
  expect(ms >= MIN_SCRUB_INTERVAL_MS, 'scrubInterval', 'a duration of at least 1s, or "off"', v);
  return ms;
}

function parseWriteAroundAfter(v: unknown): number {
  if (v === undefined) return DEFAULT_WRITE_AROUND_AFTER_BYTES;
  if (v === 'off' || v === false) return 0;
  expect(typeof v === 'string' || typeof v === 'number', 'writeAroundAfter', 'a size like 4MiB, or "off"', v);
  return parseBytes(v as string | number, 'config writeAroundAfter');
}

export function defaultStateDir(livePath: string): string {
  const id = createHash('sha256').update(livePath).digest('hex').slice(0, 12);
  return path.join(DEFAULT_STATE_ROOT, `${path.basename(livePath) || 'root'}-${id}`);
}

/** Validate the raw form; throws ShadowfsError naming the key on the first problem. */
export function parseVolumeConfig(raw: unknown): VolumeConfig {
  expect(isRecord(raw), '(top level)', 'an object', raw);
  const known = new Set(['live', 'stateDir', 'extentSize', 'writeMode', 'writeAroundAfter', 'admitAfterReads', 'tiers', 'coverageTier', 'coverageScanInterval', 'scrubInterval', 'scrubRate', 'copyRate', 'concurrentCopies', 'watchLive', 'placement', 'watchdog', 'predictor']);
  for (const k of Object.keys(raw)) expect(known.has(k), k, `one of ${[...known].join(', ')}`, k);
  const r = raw as RawVolumeConfig;
  expect(typeof r.live === 'string' && r.live.length > 0, 'live', 'the live volume directory', r.live);
  const livePath = path.resolve(r.live);
  const stateDir = r.stateDir === undefined ? defaultStateDir(livePath) : r.stateDir;
  expect(typeof stateDir === 'string' && stateDir.length > 0, 'stateDir', 'a directory path', stateDir);
  const extentSizeBytes = r.extentSize === undefined
    ? DEFAULT_EXTENT_SIZE_BYTES
    : parseSizeSetting(r.extentSize, 'extentSize');
  expect(extentSizeBytes >= 4096 && extentSizeBytes <= 64 * 1024 * 1024 && (extentSizeBytes & (extentSizeBytes - 1)) === 0,
    'extentSize', 'a power of two from 4KiB to 64MiB', r.extentSize);
  const writeMode = r.writeMode ?? 'write-through';
  expect(writeMode === 'write-through', 'writeMode', '"write-through"', writeMode);
  const writeAroundAfterBytes = parseWriteAroundAfter(r.writeAroundAfter);
  const admit = r.admitAfterReads ?? DEFAULT_ADMIT_AFTER_READS;
  expect(typeof admit === 'number' && Number.isInteger(admit) && admit >= 1, 'admitAfterReads', 'a whole number >= 1', admit);
  const rawTiers = r.tiers ?? [];
  expect(Array.isArray(rawTiers), 'tiers', 'a list of tiers', rawTiers);
  // Refused, not a pass-through: every write is acknowledged once a shadow holds it too (rule 2),
  // a volume's last tier cannot be removed (tier-changes.ts), and with no tier nothing is shadowed.
  expect(rawTiers.length > 0, 'tiers', `at least one tier (a shadowfs volume keeps its shadow copies on tiers: ${NEED_A_TIER})`, r.tiers);
  const tiers = rawTiers.map(parseTier);
  const names = new Set<string>();
  for (const t of tiers) {
    if (names.has(t.name)) throw new ShadowfsError(`config tiers: two tiers are named "${t.name}"`);
    names.add(t.name);
  }
  const coverageTier = r.coverageTier;
  expect(coverageTier === undefined || (typeof coverageTier === 'string' && names.has(coverageTier)), 'coverageTier', `the name of a tier (${[...names].join(', ') || 'none defined'})`, coverageTier);
  const copyBytesPerSec = parseSizeSetting(r.copyRate ?? '200MiB', 'copyRate');
  expect(copyBytesPerSec > 0, 'copyRate', 'a rate above zero, bytes per second', r.copyRate);
  const concurrent = r.concurrentCopies ?? 4;
  expect(typeof concurrent === 'number' && Number.isInteger(concurrent) && concurrent >= 1 && concurrent <= 64, 'concurrentCopies', 'a whole number from 1 to 64', concurrent);
  const scanInterval = r.coverageScanInterval ?? '5m';
  expect(typeof scanInterval === 'string' || typeof scanInterval === 'number', 'coverageScanInterval', 'a duration like 5m', scanInterval);
  const coverageScanIntervalMs = parseDurationMs(scanInterval, 'config coverageScanInterval');
  // 0 or less would walk the whole live tree back to back.
  expect(coverageScanIntervalMs >= MIN_COVERAGE_SCAN_INTERVAL_MS, 'coverageScanInterval', 'a duration of at least 1s', scanInterval);
  const scrubIntervalMs = parseScrubInterval(r.scrubInterval);
  const scrubBytesPerSec = parseSizeSetting(r.scrubRate ?? DEFAULT_SCRUB_RATE, 'scrubRate');
  expect(scrubBytesPerSec > 0, 'scrubRate', 'a rate above zero, bytes per second', r.scrubRate);
  return {
    livePath,
    stateDir: path.resolve(stateDir),
    extentSizeBytes,
    writeMode,
    writeAroundAfterBytes,
    tiers,
    admitAfterReads: admit,
    coverageTier,
    coverageScanIntervalMs,
    scrubIntervalMs,
    scrubBytesPerSec,
    copyBytesPerSec,
    concurrentCopies: concurrent,
    watchLive: parseWatchLive(r.watchLive),
    placement: parsePlacement(r.placement),
    watchdog: parseWatchdogConfig(r.watchdog),
    predictor: parsePredictorConfig(r.predictor),
  };
}

/**
 * Parse `--tier NAME=PATH[,cap=SIZE][,class=CLASS][,cost=N]` as the mount command takes it.
 * NAME doubles as the class when it is one (nvme=/mnt/nvme,cap=20GiB). An object tier gives an
 * endpoint URL instead of a path: s3=http://127.0.0.1:9000,bucket=b,cache=/var/cache/s3,cap=1TiB.
 */
export function parseTierFlag(flag: string): Record<string, unknown> {
  const [head, ...opts] = flag.split(',');
  const eq = head.indexOf('=');
  if (eq <= 0) throw new ShadowfsError(`--tier "${flag}": expected NAME=PATH,cap=SIZE (e.g. nvme=/mnt/nvme/shadow,cap=20GiB)`);
  const out: Record<string, unknown> = { name: head.slice(0, eq), path: head.slice(eq + 1) };
  for (const opt of opts) {
    const [k, v] = opt.split('=', 2);
    if (v === undefined) throw new ShadowfsError(`--tier "${flag}": option "${opt}" needs a value (key=value)`);
    if (k === 'cap' || k === 'capacity') out.capacity = v;
    else if (k === 'bucket' || k === 'prefix' || k === 'region' || k === 'cache' || k === 'cache-cap') {
      const obj = (out.object ??= { endpoint: out.path }) as Record<string, unknown>;
      obj[k === 'cache' ? 'cacheDir' : k === 'cache-cap' ? 'cacheCapacity' : k] = v;
      out.class = 'object';
    }
    else if (k === 'class') out.class = v;
    else if (k === 'cost') {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new ShadowfsError(`--tier "${flag}": cost must be a number (per GiB-month), got "${v}"`);
      out.costPerGiBMonth = n;
    } else throw new ShadowfsError(`--tier "${flag}": unknown option "${k}" (known: cap, class, cost; for an object tier: bucket, prefix, region, cache, cache-cap)`);
  }
  if (out.object) delete out.path;
  return out;
}
