/**
 * `shadowfs health`, `failover`, `failback`: the live volume's health as the watchdog sees it, and
 * the manual switches (with their safety checks: failover wants full coverage, failback wants a
 * live volume that answers its probes; --force skips them).
 */
import type { Argv, CommandModule } from 'yargs';
import { controlRequest } from '../../control/control-client';
import type { FailoverStatus } from '../../failover/failover-controller';
import { formatBytes } from '../../util/units';
import { progress } from '../progress';

interface MountArg {
  mountpoint: string;
  json: boolean;
}

interface ForceArg extends MountArg {
  force: boolean;
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(1)} ms`);
const us = (v: number | undefined): string => (v === undefined ? '-' : ms(v / 1000));

export function formatHealth(s: FailoverStatus): string {
  const h = s.health;
  const lines = [
    `mode: ${s.mode}${s.since ? ` since ${new Date(s.since).toISOString()}` : ''}${s.reason ? ` (${s.reason})` : ''}`,
    `live volume: ${h.state} — ${h.reason}`,
    `  p95 ${us(h.p95Us)} vs baseline ${us(h.baselineP95Us)}; error rate ${(100 * h.errorRate).toFixed(1)}%; predicted time to the latency limit: ${h.predictedMsToLimit === undefined ? 'not approaching' : ms(h.predictedMsToLimit)}`,
    `  ops pending ${h.pendingOps} (oldest ${ms(h.oldestPendingMs)}), abandoned after the ${ms(s.deadlineMs)} deadline and still running: ${s.abandonedOps}`,
    ...(h.signals.length ? [`  signs: ${h.signals.join('; ')}`] : []),
    '  track   samples errors timeouts      p50        p95        p99   baseline p95',
    ...h.tracks.map((t) => `  ${t.name.padEnd(7)} ${String(t.samples).padStart(7)} ${String(t.errors).padStart(6)} ${String(t.timeouts).padStart(8)} ${us(t.p50Us).padStart(10)} ${us(t.p95Us).padStart(10)} ${us(t.p99Us).padStart(10)} ${us(t.baselineP95Us).padStart(12)}`),
    `dirty extents waiting for resync: ${s.dirtyExtents}`,
    ...(s.resync ? [`resync: ${s.resync.extentsDone}/${s.resync.extentsTotal} extents, ${formatBytes(s.resync.bytesDone)}`] : []),
    ...(s.lastResync ? [`last resync: ${s.lastResync.extents} extents (${formatBytes(s.lastResync.bytes)}) in ${s.lastResync.seconds.toFixed(1)} s, ${s.lastResync.conflicts.length} conflicts${s.lastResync.conflicts.map((c) => `\n  conflict: ${c}`).join('')}`] : []),
    'transitions:',
    ...(s.transitions.length ? s.transitions.slice(-10).map((t) => `  ${new Date(t.timeMs).toISOString()}  ${t.from} -> ${t.to}: ${t.reason}`) : ['  none']),
  ];
  return lines.join('\n');
}

const mountpointOnly = (y: Argv): Argv<MountArg> => y
  .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A shadowfs mount point' })
  .option('json', { type: 'boolean', default: false, describe: 'Print the report as JSON' }) as unknown as Argv<MountArg>;

export const healthCommand: CommandModule<object, MountArg> = {
  command: 'health <mountpoint>',
  describe: 'The live volume\'s health: state, latency against its baseline, predicted time to the limit, transitions',
  builder: mountpointOnly,
  handler: async (args) => {
    const s = (await controlRequest(args.mountpoint, { command: 'health' })) as FailoverStatus;
    process.stdout.write(args.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatHealth(s)}\n`);
  },
};

export const failoverCommand: CommandModule<object, ForceArg> = {
  command: 'failover <mountpoint>',
  describe: 'Serve the volume from its shadows now (refused unless coverage is complete; --force overrides)',
  builder: (y) => mountpointOnly(y).option('force', { type: 'boolean', default: false, describe: 'Fail over even if some data has no shadow copy' }) as unknown as Argv<ForceArg>,
  handler: async (args) => {
    const s = (await controlRequest(args.mountpoint, { command: 'failover', force: args.force })) as FailoverStatus;
    process.stdout.write(args.json ? `${JSON.stringify(s, null, 2)}\n` : `shadowfs: ${args.mountpoint} failed over: served from the shadows; writes are journaled for resync\n`);
  },
};

export const failbackCommand: CommandModule<object, ForceArg> = {
  command: 'failback <mountpoint>',
  describe: 'Resync the live volume from the shadows (with progress), then serve from it again',
  builder: (y) => mountpointOnly(y).option('force', { type: 'boolean', default: false, describe: 'Fail back even if the live volume has not answered its probes cleanly yet' }) as unknown as Argv<ForceArg>,
  handler: async (args) => {
    const bar = args.json ? undefined : progress('resync', { interruptNote: `the resync goes on in the mount, and it fails back when done; \`shadowfs health ${args.mountpoint}\` shows it` });
    const poll = setInterval(() => {
      controlRequest(args.mountpoint, { command: 'health' }, 5_000).then((r) => {
        const s = r as FailoverStatus;
        if (s.resync) bar?.update(s.resync.extentsDone, s.resync.extentsTotal, formatBytes(s.resync.bytesDone));
      }).catch(() => undefined);
    }, 250);
    let s: FailoverStatus;
    try {
      s = (await controlRequest(args.mountpoint, { command: 'failback', force: args.force }, 24 * 3600 * 1000)) as FailoverStatus;
    } finally {
      clearInterval(poll);
      bar?.stop();
    }
    if (args.json) process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    else {
      const r = s.lastResync;
      process.stdout.write(`shadowfs: ${args.mountpoint} failed back to the live volume${r ? ` after resyncing ${r.extents} extents (${formatBytes(r.bytes)}) in ${r.seconds.toFixed(1)} s` : ''}\n`);
      for (const c of r?.conflicts ?? []) process.stdout.write(`conflict: ${c}\n`);
    }
  },
};
