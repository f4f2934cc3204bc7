/** `shadowfs tier add|set|remove`: change the tiers of a running mount without unmounting. */
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import type { DrainProgress } from '../../shadow/tier-changes';
import { progress } from '../progress';

export interface TierArgs {
  action: 'add' | 'set' | 'remove';
  mountpoint: string;
  spec?: string;
  name?: string;
  capacity?: string;
  json: boolean;
}

export const tierCommand: CommandModule<object, TierArgs> = {
  command: 'tier <action> <mountpoint> [spec]',
  describe: 'Add a tier, change its capacity, or drain and remove it, while mounted',
  builder: (y) => y
    .positional('action', { choices: ['add', 'set', 'remove'] as const, demandOption: true })
    .positional('mountpoint', { type: 'string', demandOption: true })
    .positional('spec', { type: 'string', describe: 'for add: NAME=PATH,cap=SIZE[,class=CLASS][,cost=N] (as mount --tier)' })
    .option('name', { type: 'string', describe: 'for set and remove: the tier' })
    .option('capacity', { type: 'string', describe: 'for set: the new capacity, e.g. 40GiB' })
    .option('json', { type: 'boolean', default: false })
    .example('$0 tier add /mnt/app ssd2=/mnt/ssd2/shadow,cap=100GiB', '')
    .example('$0 tier set /mnt/app --name nvme --capacity 40GiB', '')
    .example('$0 tier remove /mnt/app --name ssd2', '') as unknown as Argv<TierArgs>,
  handler: async (args) => {
    const say = (what: unknown, text: string): void => void process.stdout.write(args.json ? JSON.stringify(what) + '\n' : text + '\n');
    if (args.action === 'add') {
      const r = await controlRequest(args.mountpoint, { command: 'tier-add', spec: args.spec });
      say(r, `tier ${(r as { added: string }).added} added`);
      return;
    }
    if (args.action === 'set') {
      const r = await controlRequest(args.mountpoint, { command: 'tier-set', name: args.name, capacity: args.capacity });
      say(r, `tier ${args.name}: capacity ${args.capacity}`);
      return;
    }
    const bar = args.json ? undefined : progress(`draining ${args.name}`);
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
    } finally {
      clearInterval(poll);
      bar?.stop();
    }
  },
};
