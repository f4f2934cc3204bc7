/** `shadowfs pin|unpin|hint PATH`: say where a file should live, or that it will be used soon. */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import { findMountOf } from '../../fuse/mount-table';
import { ShadowfsError } from '../../util/errors';
import { parseBytes, parseDurationMs } from '../../util/units';

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
  .option('json', { type: 'boolean', default: false }) as unknown as Argv<T>;

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
    let fromByte: number | undefined;
    let toByte: number | undefined;
    if (args.range) {
      const m = /^([^-]+)-([^-]+)$/.exec(args.range);
      if (!m) throw new ShadowfsError(`--range "${args.range}": expected A-B, e.g. 0-64MiB`);
      fromByte = parseBytes(m[1], '--range start');
      toByte = parseBytes(m[2], '--range end');
    }
    let atMs = Date.now();
    if (args.at && !args.now) {
      atMs = args.at.startsWith('+') ? Date.now() + parseDurationMs(args.at.slice(1), '--at') : Date.parse(args.at);
      if (!Number.isFinite(atMs)) throw new ShadowfsError(`--at "${args.at}": expected an ISO time like 2026-11-29T02:00:00Z or +5m`);
    }
    const durationMs = parseDurationMs(args.duration, '--duration');
    const r = await controlRequest(mount, { command: 'hint', path: abs, fromByte, toByte, atMs, durationMs });
    say(args.json, r, `hinted ${args.path}: promoted ${atMs <= Date.now() ? 'now' : 'at ' + new Date(atMs).toISOString()} for ${args.duration}`);
  },
};
