/** `shadowfs tier add|set|remove`: change the tiers of a running mount without unmounting. */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import type { DrainProgress } from '../../shadow/tier-changes';
import { ShadowfsError } from '../../util/errors';
import { parseBytes } from '../../util/units';
import { progress } from '../progress';

export interface TierArgs {
  action: 'add' | 'set' | 'remove';
  mountpoint: string;
  spec?: string;
  name?: string;
  capacity?: string;
  json: boolean;
}

/**
 * The daemon resolves a relative path against its own working directory, not the caller's: make
 * the tier's directory (or an object tier's cache) absolute here. An endpoint URL stays as it is.
 */
function absoluteTierSpec(spec: string): string {
  return spec.split(',').map((part, i) => {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    const isPath = i === 0 ? !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) : key === 'cache';
    return eq > 0 && isPath && value !== '' && !path.isAbsolute(value) ? `${key}=${path.resolve(value)}` : part;
  }).join(',');
}

/** `--capacity`: a size above zero, checked here so a bad one is refused before asking the mount. */
function checkCapacity(given: string): void {
  const aboveZero = `--capacity "${given}": a capacity must be above zero (a size like 40GiB)`;
  if (/^\s*-/.test(given) || parseBytes(given, '--capacity') <= 0) throw new ShadowfsError(aboveZero);
}

export const tierCommand: CommandModule<object, TierArgs> = {
  command: 'tier <action> <mountpoint> [spec]',
  describe: 'Add a tier, change its capacity, or drain and remove it, while mounted',
  builder: (y) => y
    .positional('action', { choices: ['add', 'set', 'remove'] as const, demandOption: true, describe: 'add a tier; set its capacity (a smaller one evicts down to it); remove it (its copies are dropped first, with progress; the only copy of a write that coverage lacks is moved to another tier)' })
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A running shadowfs mount' })
    .positional('spec', { type: 'string', describe: 'for add: NAME=PATH,cap=SIZE[,class=CLASS][,cost=N] (as mount --tier)' })
    .option('name', { type: 'string', describe: 'for set and remove: the tier' })
    // requiresArg: the next word is the value even when it starts with '-' (-5GiB), so the size
    // check below can say what is wrong with it instead of yargs reading it as flags -5 -G -i -B.
    .option('capacity', { type: 'string', requiresArg: true, describe: 'for set: the new capacity, e.g. 40GiB' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the outcome as JSON' })
    .example('$0 tier add /mnt/app ssd2=/mnt/ssd2/shadow,cap=100GiB,class=ssd', '')
    .example('$0 tier set /mnt/app --name nvme --capacity 40GiB', '')
    .example('$0 tier remove /mnt/app --name ssd2', '') as unknown as Argv<TierArgs>,
  handler: async (args) => {
    const say = (what: unknown, text: string): void => void process.stdout.write(args.json ? JSON.stringify(what) + '\n' : text + '\n');
    if (args.action !== 'add' && args.spec !== undefined) throw new ShadowfsError(`tier ${args.action} takes --name${args.action === 'set' ? ' and --capacity' : ''}, not a spec ("${args.spec}")`);
    if (args.action !== 'add' && !args.name) throw new ShadowfsError(`tier ${args.action}: give the tier with --name NAME`);
    if (args.action === 'set' && !args.capacity) throw new ShadowfsError('tier set: give the new size with --capacity SIZE');
    if (args.action === 'set') checkCapacity(args.capacity as string);
    if (args.action === 'add') {
      const r = await controlRequest(args.mountpoint, { command: 'tier-add', spec: args.spec === undefined ? undefined : absoluteTierSpec(args.spec) });
      say(r, `tier ${(r as { added: string }).added} added`);
      return;
    }
    if (args.action === 'set') {
      const r = await controlRequest(args.mountpoint, { command: 'tier-set', name: args.name, capacity: args.capacity });
      say(r, `tier ${args.name}: capacity ${args.capacity}`);
      return;
    }
    const bar = args.json ? undefined : progress(`draining ${args.name}`, { interruptNote: `draining ${args.name} goes on in the mount, and the tier is removed once it is empty; \`shadowfs status ${args.mountpoint}\` shows it` });
    const poll = setInterval(() => {
      controlRequest(args.mountpoint, { command: 'tier-progress' }, 5_000)
        .then((p) => {
          const d = p as DrainProgress | null;
          if (d && !d.done) bar?.update(d.removedCopies + d.movedCopies, d.totalCopies);
        })
        .catch(() => undefined);
    }, 250);
    try {
      const r = (await controlRequest(args.mountpoint, { command: 'tier-remove', name: args.name }, 24 * 3600 * 1000)) as DrainProgress;
      bar?.stop();
      say(r, `tier ${r.tier} drained (${r.removedCopies} copies dropped${r.movedCopies ? `; ${r.movedCopies} written but not yet on the coverage tier, moved to other tiers first` : ''}) and removed`);
      if (r.note && !args.json) process.stderr.write(`shadowfs: warning: tier ${r.tier}: ${r.note}\n`);
    } finally {
      clearInterval(poll);
      bar?.stop();
    }
  },
};
