/**
 * What a config reload would change on a running mount, and whether it may: a pure comparison of
 * the running settings with the newly read file. Settings a mount can change live become changes;
 * settings fixed for the life of a mount (the live path, the state directory, the extent size, the
 * placement policy, the coverage tier, a tier's path or class) become refusals, and one refusal
 * refuses the whole reload: the old settings stay, all of them.
 */
import { TierSpec } from '../tiers/tier';
import { formatBytes } from '../util/units';
import { PredictorConfig } from './predictor-config';
import { VolumeConfig } from './volume-config';
import { WatchdogConfig } from './watchdog-config';

export type ConfigChange =
  | { kind: 'tier-add'; spec: TierSpec }
  | { kind: 'tier-capacity'; name: string; fromBytes: number; toBytes: number }
  | { kind: 'tier-cost'; name: string; from: number; to: number }
  | { kind: 'tier-remove'; name: string }
  | { kind: 'copy-rate'; fromBytesPerSec: number; toBytesPerSec: number }
  | { kind: 'concurrent-copies'; from: number; to: number }
  | { kind: 'admit-after-reads'; from: number; to: number }
  | { kind: 'coverage-scan-interval'; fromMs: number; toMs: number }
  | { kind: 'scrub-interval'; fromMs: number | null; toMs: number | null }
  | { kind: 'scrub-rate'; fromBytesPerSec: number; toBytesPerSec: number }
  | { kind: 'watch-live'; to: boolean }
  | { kind: 'watchdog'; to: WatchdogConfig; changed: string[] }
  | { kind: 'predictor'; to: PredictorConfig; changed: string[] };

export interface ConfigDiff {
  /** In the order they are applied: tiers first (the steps that can fail), removals (drains) last among them. */
  changes: ConfigChange[];
  /** Why the reload cannot be applied live; empty when it can. */
  refusals: string[];
}

const KIND_ORDER: ConfigChange['kind'][] = [
  'tier-add', 'tier-capacity', 'tier-cost', 'tier-remove',
  'copy-rate', 'concurrent-copies', 'admit-after-reads', 'coverage-scan-interval', 'scrub-interval', 'scrub-rate', 'watch-live', 'watchdog', 'predictor',
];

const ms = (v: number): string => (v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`);

export function describeChange(c: ConfigChange): string {
  switch (c.kind) {
    case 'tier-add': return `tier ${c.spec.name} added (${c.spec.class}, ${c.spec.object ? c.spec.object.endpoint : c.spec.path}, ${formatBytes(c.spec.capacityBytes)})`;
    case 'tier-capacity': return `tier ${c.name}: capacity ${formatBytes(c.fromBytes)} → ${formatBytes(c.toBytes)}`;
    case 'tier-cost': return `tier ${c.name}: cost per GiB-month ${c.from} → ${c.to}`;
    case 'tier-remove': return `tier ${c.name} drained and removed`;
    case 'copy-rate': return `copyRate ${formatBytes(c.fromBytesPerSec)}/s → ${formatBytes(c.toBytesPerSec)}/s`;
    case 'concurrent-copies': return `concurrentCopies ${c.from} → ${c.to}`;
    case 'admit-after-reads': return `admitAfterReads ${c.from} → ${c.to}`;
    case 'coverage-scan-interval': return `coverageScanInterval ${ms(c.fromMs)} → ${ms(c.toMs)}`;
    case 'scrub-interval': return `scrubInterval ${c.fromMs === null ? 'off' : ms(c.fromMs)} → ${c.toMs === null ? 'off' : ms(c.toMs)}`;
    case 'scrub-rate': return `scrubRate ${formatBytes(c.fromBytesPerSec)}/s → ${formatBytes(c.toBytesPerSec)}/s`;
    case 'watch-live': return `watchLive ${!c.to} → ${c.to}`;
    case 'watchdog': return `watchdog: ${c.changed.join(', ')}`;
    case 'predictor': return `predictor: ${c.changed.join(', ')}`;
  }
}

/** `key a → b` for every key whose value differs (nested settings by their own names). */
function changedKeys(from: object, to: object): string[] {
  const a = from as Record<string, unknown>;
  const b = to as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(b)) {
    const x = a[k];
    const y = b[k];
    if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) out.push(...changedKeys(x, y));
    else if (x !== y) out.push(`${k} ${String(x)} → ${String(y)}`);
  }
  return out;
}

function objectStoreOf(t: TierSpec): string {
  return JSON.stringify(t.object ?? null);
}

function diffTiers(running: readonly TierSpec[], next: readonly TierSpec[], changes: ConfigChange[], refusals: string[]): void {
  const before = new Map(running.map((t) => [t.name, t]));
  const after = new Map(next.map((t) => [t.name, t]));
  for (const t of next) {
    const old = before.get(t.name);
    if (!old) {
      changes.push({ kind: 'tier-add', spec: t });
      continue;
    }
    const fixed = `cannot change on a running mount; remove the tier and add one under another name`;
    if (old.class !== t.class) refusals.push(`tiers.${t.name}.class: ${fixed} (${old.class} → ${t.class})`);
    if (old.object || t.object) {
      if (objectStoreOf(old) !== objectStoreOf(t)) refusals.push(`tiers.${t.name}.object: ${fixed}`);
    } else if (old.path !== t.path) refusals.push(`tiers.${t.name}.path: ${fixed} (${old.path} → ${t.path})`);
    if (old.capacityBytes !== t.capacityBytes) changes.push({ kind: 'tier-capacity', name: t.name, fromBytes: old.capacityBytes, toBytes: t.capacityBytes });
    if (old.costPerGiBMonth !== t.costPerGiBMonth) changes.push({ kind: 'tier-cost', name: t.name, from: old.costPerGiBMonth, to: t.costPerGiBMonth });
  }
  for (const t of running) if (!after.has(t.name)) changes.push({ kind: 'tier-remove', name: t.name });
}

/**
 * The tiers a reload converges to: the file's edits since it was last applied, on top of the tiers
 * that run. So a reload for an unrelated edit does not undo the `tier` command: a tier it added (in
 * neither version of the file) stays, one it removed (in both) stays removed, and a capacity or
 * cost it set stays unless the file changes that value. A reload that stopped midway is retried
 * from the same last-applied file, so it picks up where it stopped.
 */
export function tiersAfterEdit(lastFile: readonly TierSpec[], nextFile: readonly TierSpec[], running: readonly TierSpec[]): TierSpec[] {
  const last = new Map(lastFile.map((t) => [t.name, t]));
  const next = new Set(nextFile.map((t) => t.name));
  const now = new Map(running.map((t) => [t.name, t]));
  const out: TierSpec[] = [];
  for (const t of nextFile) {
    const was = last.get(t.name);
    const runs = now.get(t.name);
    if (was && !runs) continue;
    if (!was || !runs) {
      out.push(t);
      continue;
    }
    const edited = (k: keyof TierSpec): boolean => JSON.stringify(was[k]) !== JSON.stringify(t[k]);
    out.push({
      ...runs,
      class: edited('class') ? t.class : runs.class,
      path: edited('path') ? t.path : runs.path,
      object: edited('object') ? t.object : runs.object,
      capacityBytes: edited('capacityBytes') ? t.capacityBytes : runs.capacityBytes,
      costPerGiBMonth: edited('costPerGiBMonth') ? t.costPerGiBMonth : runs.costPerGiBMonth,
    });
  }
  for (const t of running) if (!next.has(t.name) && !last.has(t.name)) out.push(t);
  return out;
}

/**
 * `running` is the mount's current settings with its tiers as they are now (the `tier` command
 * changes them too), `next` the file as just read and validated.
 */
export function diffConfigs(running: VolumeConfig, next: VolumeConfig): ConfigDiff {
  const changes: ConfigChange[] = [];
  const refusals: string[] = [];
  const fixed = (key: string, from: unknown, to: unknown, why = 'cannot change on a running mount; unmount and mount again'): void => {
    if (from !== to) refusals.push(`${key}: ${why} (${String(from ?? 'none')} → ${String(to ?? 'none')})`);
  };
  fixed('live', running.livePath, next.livePath);
  fixed('stateDir', running.stateDir, next.stateDir);
  fixed('extentSize', running.extentSizeBytes, next.extentSizeBytes, 'fixed for a state directory');
  fixed('writeMode', running.writeMode, next.writeMode);
  fixed('writeAroundAfter', running.writeAroundAfterBytes, next.writeAroundAfterBytes);
  fixed('placement', running.placement, next.placement);
  fixed('coverageTier', running.coverageTier, next.coverageTier);
  diffTiers(running.tiers, next.tiers, changes, refusals);
  if (running.copyBytesPerSec !== next.copyBytesPerSec) changes.push({ kind: 'copy-rate', fromBytesPerSec: running.copyBytesPerSec, toBytesPerSec: next.copyBytesPerSec });
  if (running.concurrentCopies !== next.concurrentCopies) changes.push({ kind: 'concurrent-copies', from: running.concurrentCopies, to: next.concurrentCopies });
  if (running.admitAfterReads !== next.admitAfterReads) changes.push({ kind: 'admit-after-reads', from: running.admitAfterReads, to: next.admitAfterReads });
  if (running.coverageScanIntervalMs !== next.coverageScanIntervalMs) changes.push({ kind: 'coverage-scan-interval', fromMs: running.coverageScanIntervalMs, toMs: next.coverageScanIntervalMs });
  if (running.scrubIntervalMs !== next.scrubIntervalMs) changes.push({ kind: 'scrub-interval', fromMs: running.scrubIntervalMs, toMs: next.scrubIntervalMs });
  if (running.scrubBytesPerSec !== next.scrubBytesPerSec) changes.push({ kind: 'scrub-rate', fromBytesPerSec: running.scrubBytesPerSec, toBytesPerSec: next.scrubBytesPerSec });
  if (running.watchLive !== next.watchLive) changes.push({ kind: 'watch-live', to: next.watchLive });
  const watchdog = changedKeys(running.watchdog, next.watchdog);
  if (watchdog.length > 0) changes.push({ kind: 'watchdog', to: next.watchdog, changed: watchdog });
  const predictor = changedKeys(running.predictor, next.predictor);
  if (predictor.length > 0) changes.push({ kind: 'predictor', to: next.predictor, changed: predictor });
  changes.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
  return { changes, refusals };
}
