/**
 * `shadowfs pin|unpin|hint|promote|demote PATH`: say where a file should live (persistently, or
 * once, now), or that it will be used soon.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { findMountOf } from '../../fuse/mount-table';
import { ShadowfsError } from '../../util/errors';
import type { KeptReason, MoveProgress } from '../../shadow/one-off-moves';
import { parseBytes, parseDurationMs } from '../../util/units';
import { progress } from '../progress';

interface PathArgs {
  path: string;
  mount?: string;
  json: boolean;
}

async function mountOf(args: PathArgs): Promise<{ mount: string; abs: string }> {
  const abs = path.resolve(args.path);
  const mount = args.mount ? path.resolve(args.mount) : await findMountOf(abs);
  if (!mount) throw new ShadowfsError(`${args.path} is not inside a shadowfs mount`);
  return { mount, abs };
}

const pathOptions = <T>(y: Argv<object>): Argv<T> => y
  .positional('path', { type: 'string', demandOption: true, describe: 'A file inside a shadowfs mount' })
  .option('mount', { type: 'string', describe: 'The mount point (default: the shadowfs mount holding PATH)' })
  .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON' }) as unknown as Argv<T>;

function say(json: boolean, result: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(result) + '\n' : text + '\n');
}

export const pinCommand: CommandModule<object, PathArgs & { tier: string }> = {
  command: 'pin <path>',
  describe: 'Keep every extent of a file on a tier (copied now, never evicted from it); survives remounts',
  builder: (y) => pathOptions<PathArgs & { tier: string }>(y.option('tier', { type: 'string', demandOption: true, describe: 'The tier, e.g. nvme' })),
  handler: async (args) => {
    const { mount, abs } = await mountOf(args);
    const r = await controlRequest(mount, { command: 'pin', path: abs, tier: args.tier });
    say(args.json, r, `pinned ${args.path} to ${args.tier}`);
  },
};

export const unpinCommand: CommandModule<object, PathArgs> = {
  command: 'unpin <path>',
  describe: 'Remove a pin (the copies stay until evicted)',
  builder: (y) => pathOptions<PathArgs>(y),
  handler: async (args) => {
    const { mount, abs } = await mountOf(args);
    const r = await controlRequest(mount, { command: 'unpin', path: abs });
    say(args.json, r, `unpinned ${args.path}`);
  },
};

/** `--range A-B` in bytes (sizes allowed); both undefined without a range. */
function parseRange(range: string | undefined): { fromByte?: number; toByte?: number } {
  if (!range) return {};
  const m = /^([^-]+)-([^-]+)$/.exec(range);
  if (!m) throw new ShadowfsError(`--range "${range}": expected A-B, e.g. 0-64MiB`);
  return { fromByte: parseBytes(m[1], '--range start'), toByte: parseBytes(m[2], '--range end') };
}

interface HintArgs extends PathArgs {
  range?: string;
  at?: string;
  now: boolean;
  duration: string;
}

export const hintCommand: CommandModule<object, HintArgs> = {
  command: 'hint <path>',
  describe: 'Say a file (or a byte range of it) will be used soon: it is promoted to the fastest tier in time and kept there for the duration',
  builder: (y) => pathOptions<HintArgs>(y
    .option('range', { type: 'string', describe: 'Bytes A-B (sizes like 0-64MiB); default the whole file' })
    .option('at', { type: 'string', describe: 'When the use starts: an ISO time, or +DURATION from now (e.g. +5m)' })
    .option('now', { type: 'boolean', default: false, describe: 'The use starts now (the default when --at is not given)' })
    .option('duration', { type: 'string', default: '10m', describe: 'How long the use lasts' })
    .example('$0 hint /mnt/app/reports/nightly.db --at 2026-11-29T02:00:00Z --duration 1h', '')),
  handler: async (args) => {
    const { mount, abs } = await mountOf(args);
    const { fromByte, toByte } = parseRange(args.range);
    let atMs = Date.now();
    if (args.at && !args.now) {
      atMs = args.at.startsWith('+') ? Date.now() + parseDurationMs(args.at.slice(1), '--at') : Date.parse(args.at);
      if (!Number.isFinite(atMs)) throw new ShadowfsError(`--at "${args.at}": expected an ISO time like 2026-11-29T02:00:00Z or +5m`);
    }
    const durationMs = parseDurationMs(args.duration, '--duration');
    if (durationMs <= 0) throw new ShadowfsError(`--duration "${args.duration}": expected a duration above zero, like 10m`);
    const r = await controlRequest(mount, { command: 'hint', path: abs, fromByte, toByte, atMs, durationMs });
    say(args.json, r, `hinted ${args.path}: promoted ${atMs <= Date.now() ? 'now' : 'at ' + new Date(atMs).toISOString()} for ${args.duration}`);
  },
};

interface MoveArgs extends PathArgs {
  tier: string;
  range?: string;
}

/** Runs a promote or demote on the mount, showing progress until it is done. */
async function runMove(kind: 'promote' | 'demote', args: MoveArgs): Promise<void> {
  const { mount, abs } = await mountOf(args);
  const id = randomUUID();
  const bar = args.json ? undefined : progress(`${kind} ${args.path}`, { interruptNote: `the ${kind} goes on in the mount; \`shadowfs which-tier ${args.path}\` shows where the extents are` });
  const poll = setInterval(() => {
    controlRequest(mount, { command: 'move-progress', id }, 5_000)
      .then((p) => {
        const m = p as MoveProgress | null;
        if (m?.running) bar?.update(m.doneExtents, m.totalExtents, 'extents');
      })
      .catch(() => undefined);
  }, 250);
  let r: MoveProgress;
  try {
    r = (await controlRequest(mount, { command: kind, id, path: abs, tier: args.tier, ...parseRange(args.range) }, 24 * 3600 * 1000)) as MoveProgress;
    bar?.update(r.doneExtents, r.totalExtents, 'extents');
  } finally {
    clearInterval(poll);
    bar?.stop();
  }
  const secs = ((r.finishedAtMs ?? r.startedAtMs) - r.startedAtMs) / 1000;
  const kept = keptText(r);
  const what = kind === 'promote'
    ? `${r.copiedExtents} copied to ${r.tier}, ${r.unchangedExtents} already there`
    : `${r.copiedExtents} moved to ${r.movedTo ?? '-'}, ${r.droppedExtents} dropped (held elsewhere), ${r.unchangedExtents} had no copy on ${r.tier}${kept ? `, ${keptCount(r)} kept (${kept})` : ''}`;
  say(args.json, r, `${kind}d ${args.path}: ${r.totalExtents} extents in ${secs.toFixed(1)} s: ${what}${r.failedExtents ? `, ${r.failedExtents} failed` : ''}`);
  const problems: string[] = [];
  // Not "see the mount's log": a copy that a write overtook, or that found no room, is not logged; a tier error is.
  if (r.failedExtents > 0) problems.push(`${r.failedExtents} of ${r.totalExtents} extents could not be ${kind}d: their copies did not complete (a write changed them meanwhile, no room, or a tier error, which the mount's log records); \`shadowfs which-tier ${args.path}\` shows where they are`);
  if (kept) problems.push(`${keptCount(r)} of ${r.totalExtents} extents stay on ${r.tier}: ${kept}`);
  if (problems.length > 0) throw new ShadowfsError(problems.join('; '));
}

/** Why a demote left copies on the tier, after their count: "40 are held by an active hint". */
const KEPT_REASON_TEXT: Readonly<Record<KeptReason, string>> = {
  coverageTier: 'are on the coverage tier',
  pinned: 'are pinned there',
  hinted: 'are held by an active hint (until it ends)',
  soleCopy: "hold their extent's only copy besides the live volume (a write the coverage tier lacks yet)",
};

/** Copies a demote left on the tier, by reason ("40 are held by an active hint"), or '' for none. */
function keptText(r: MoveProgress): string {
  // ?? {}: a daemon started before this CLI was installed does not count them.
  const kept: Partial<MoveProgress['keptExtents']> = r.keptExtents ?? {};
  return (Object.keys(KEPT_REASON_TEXT) as KeptReason[])
    .filter((reason) => (kept[reason] ?? 0) > 0)
    .map((reason) => `${kept[reason]} ${KEPT_REASON_TEXT[reason]}`)
    .join(', ');
}

function keptCount(r: MoveProgress): number {
  return Object.values(r.keptExtents ?? {}).reduce((a, b) => a + b, 0);
}

export const promoteCommand: CommandModule<object, MoveArgs> = {
  command: 'promote <path>',
  describe: 'Copy a file (or a byte range of it) to a tier now, once, and wait until done (unlike pin, nothing keeps it there later)',
  builder: (y) => pathOptions<MoveArgs>(y
    .option('tier', { type: 'string', demandOption: true, describe: 'The tier, e.g. nvme' })
    .option('range', { type: 'string', describe: 'Bytes A-B (sizes like 0-64MiB); default the whole file' })
    .example('$0 promote /mnt/app/index.db --tier nvme', '')),
  handler: (args) => runMove('promote', args),
};

export const demoteCommand: CommandModule<object, MoveArgs> = {
  command: 'demote <path>',
  describe: "Move a file's copies off a tier now: to the next cheaper tier, or dropped where the coverage tier (or that cheaper tier) already holds them",
  builder: (y) => pathOptions<MoveArgs>(y
    .option('tier', { type: 'string', demandOption: true, describe: 'The tier to move off, e.g. nvme' })
    .example('$0 demote /mnt/app/old.log --tier nvme', '')),
  handler: (args) => runMove('demote', args),
};
