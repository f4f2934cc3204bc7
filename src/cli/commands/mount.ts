/**
 * `shadowfs mount`: present the live volume at a mount point, in the foreground (Ctrl-C or
 * SIGTERM unmounts cleanly) or detached with --daemon.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { checkMountpoint, checkVolumePaths } from '../../config/check-paths';
import { buildHandlers } from '../../fuse/adapter';
import { fallocateFd, FuseMount, lazyUnmount, LIBFUSE_MAX_REQUEST_BYTES, loadFuseBinding, MAX_REQUEST_BYTES, mknodAt, syncAllFilesystems } from '../../fuse/binding';
import { fuseMountsAt, isMounted, isStale } from '../../fuse/mount-table';
import { openVolume } from '../../volume/open-volume';
import { formatStatus } from './status';
import { readPid, removePidFile, socketFile, writePidFile } from '../../control/runtime-files';
import { ControlServer } from '../../control/control-server';
import { registerControlHandlers } from '../../control/handlers';
import type { StatusReport } from '../../control/protocol';
import { registerFailoverHandlers } from '../../control/failover-handlers';
import type { MetricsServer } from '../../control/metrics';
import { DashboardData } from '../../dashboard/dashboard-data';
import { DashboardServer } from '../../dashboard/dashboard-server';
import { mountSources } from '../../dashboard/mount-sources';
import { ShadowfsError, errorCode } from '../../util/errors';
import { createLogger } from '../../util/log';
import { makeDirs } from '../../util/make-dirs';
import { volumeConfigFrom, VolumeFlags } from '../load-config';
import { ConfigReloader } from '../../config/config-reloader';
import { settlesWithin } from '../../util/settles-within';

export interface MountArgs {
  mountpoint: string;
  config?: string;
  live?: string;
  tier?: string[];
  state?: string;
  'extent-size'?: string;
  'admit-after'?: number;
  'write-around-after'?: string;
  'coverage-tier'?: string;
  'copy-rate'?: string;
  'scrub-interval'?: string;
  'watch-live'?: boolean;
  'metrics-port'?: number;
  'dashboard-port'?: number;
  placement?: string;
  daemon: boolean;
  verbose: boolean;
  'allow-other': boolean;
  'idle-poll': boolean;
  'io-uring': boolean;
}

function volumeFlags(args: MountArgs): VolumeFlags {
  return { config: args.config, live: args.live, tier: args.tier, state: args.state, extentSize: args['extent-size'], admitAfter: args['admit-after'], writeAroundAfter: args['write-around-after'], coverageTier: args['coverage-tier'], copyRate: args['copy-rate'], scrubInterval: args['scrub-interval'], watchLive: args['watch-live'], placement: args.placement };
}

/** Checked before anything is touched: a bad port would otherwise be found only once mounted. */
function checkPort(port: number | undefined, flag: string): void {
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new ShadowfsError(`--${flag}: expected a TCP port from 0 (any free one) to 65535`);
  }
}

/** The state directory and its missing parents, with a one-line error naming it. */
async function makeStateDir(dir: string): Promise<void> {
  try {
    await makeDirs(dir);
  } catch (err) {
    throw new ShadowfsError(`state directory ${dir} cannot be created: ${errorCode(err) ?? (err as Error).message}`);
  }
}

/** LevelDB's lock: another mount (or a daemon still shutting down) has this state directory open. */
function stateDirInUse(err: unknown, stateDir: string): unknown {
  const cause = (err as { cause?: unknown })?.cause;
  if (errorCode(err) === 'LEVEL_DATABASE_NOT_OPEN' && errorCode(cause) === 'LEVEL_LOCKED') {
    return new ShadowfsError(`state directory ${stateDir} is in use by another shadowfs mount (give this one its own --state)`);
  }
  return err;
}

/**
 * How long --daemon waits for the child to serve. Start-up walks every directory tier and loads the
 * extent map: 23 s with 1 M extents (docs/benchmarks.md, "Memory and metadata with 1 M extents").
 */
const READY_TIMEOUT_MS = 180_000;
/** When --daemon says the child is still starting. */
const STILL_STARTING_MS = 10_000;
/**
 * How long each step of a clean unmount before the volume closes may take (servers, watchers, the
 * FUSE unmount): one waiting on a hung live volume must not keep the mount point.
 */
const SHUTDOWN_STEP_MS = 10_000;
/** How often --daemon looks for the child's mount (a read of /proc/self/mountinfo): every poll's wait is start-up time. */
const READY_POLL_MS = 20;

export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount <mountpoint>',
  describe: 'Mount a live volume with its shadow tiers at MOUNTPOINT',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'An empty directory to present the volume at' })
    .option('config', { type: 'string', describe: 'Volume config file (JSON); flags given as well override it' })
    .option('live', { type: 'string', describe: 'The live volume: the backing directory' })
    .option('tier', {
      // Not `array: true`: that would swallow the mount point that follows; repeats still collect.
      type: 'string',
      coerce: (v: string | string[]) => (Array.isArray(v) ? v : [v]),
      describe: 'A shadow tier, NAME=PATH,cap=SIZE[,class=nvme|ssd|hdd][,cost=USD_PER_GIB_MONTH]; repeat for more (fastest class is read first)',
    })
    .option('state', { type: 'string', describe: 'Metadata directory (default /var/lib/shadowfs/<live name>-<hash>)' })
    .option('extent-size', { type: 'string', describe: 'Extent size, a power of two (default 1MiB); fixed for a state directory' })
    .option('admit-after', { type: 'number', describe: 'Copy an extent to the fastest tier after this many reads (default 2)' })
    .option('write-around-after', { type: 'string', describe: 'Once a writer has written this much sequentially, its writes replace cache-tier copies instead of patching them (coverage copies are always patched); "off" never (default 4MiB)' })
    .option('copy-rate', { type: 'string', describe: 'Background copy bandwidth per second, e.g. 200MiB (default 200MiB)' })
    .option('scrub-interval', { type: 'string', describe: 'Check every copy against its checksum in the background this long after the last check, e.g. 1d; "off" only on `shadowfs scrub` (default 7d)' })
    .option('watch-live', { type: 'boolean', describe: 'Watch the live directory for changes made behind the mount (costs write speed; opening a file always checks size and mtime)' })
    .option('placement', { choices: ['reactive', 'predictive'] as const, describe: 'Placement policy: reactive admission (default) or the prediction engine and planner' })
    .option('metrics-port', { type: 'number', describe: 'Serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: any free port)' })
    .option('dashboard-port', { type: 'number', describe: 'Serve a live dashboard on http://127.0.0.1:PORT/ (0: any free port; off by default)' })
    .option('coverage-tier', { type: 'string', describe: 'The tier that keeps a fresh copy of every extent (makes failover lossless)' })
    .option('daemon', { type: 'boolean', default: false, describe: 'Detach once mounted (logs go to <state>/shadowfs.log)' })
    .option('allow-other', { type: 'boolean', default: true, describe: 'Let users other than root use the mount (FUSE allow_other)' })
    .option('idle-poll', {
      type: 'boolean',
      default: true,
      describe: 'While one application at a time streams large reads or writes (any size through io_uring), keep an idle CPU polling at the lowest priority (SCHED_IDLE), so its wake-ups are not slowed by a halted virtual CPU; --no-idle-poll turns it off',
    })
    .option('io-uring', {
      type: 'boolean',
      default: true,
      describe: 'Take requests through FUSE over io_uring (a ring per CPU) when the kernel offers it, which it does once root has run `echo Y > /sys/module/fuse/parameters/enable_uring` (Linux 6.14+); otherwise through /dev/fuse. --no-io-uring: always /dev/fuse',
    })
    .option('verbose', { type: 'boolean', default: false, describe: 'Log info and debug lines, not only warnings and errors' })
    .example('$0 mount --live /srv/volume --tier nvme=/mnt/nvme/shadow,cap=20GiB --tier ssd=/mnt/ssd/shadow,cap=200GiB /mnt/app', '')
    .example('$0 mount --config /etc/shadowfs/app.json /mnt/app', '') as unknown as Argv<MountArgs>,
  handler: async (args) => {
    const mountpoint = path.resolve(args.mountpoint);
    const config = volumeConfigFrom(volumeFlags(args));
    checkPort(args['metrics-port'], 'metrics-port');
    checkPort(args['dashboard-port'], 'dashboard-port');
    loadFuseBinding();
    // Only our own crashed mount is cleared; another file system's stale mount is its owner's business.
    if (await isStale(mountpoint) && (await fuseMountsAt(mountpoint)).at(-1) === 'fuse.shadowfs') await lazyUnmount(mountpoint);
    if (await isMounted(mountpoint)) throw new ShadowfsError(`${mountpoint} is already a mount point; unmount it first`);
    await checkVolumePaths(config, mountpoint);
    await checkMountpoint(mountpoint);
    await makeStateDir(config.stateDir);
    if (args.daemon) return detach(mountpoint, config.stateDir);

    const log = createLogger(args.verbose ? 'debug' : 'warn');
    // A signal while the mount starts (opening the state, reconciling tiers, mounting) would kill
    // the process half way and leave a dead mount behind: it is noted, and the mount stops as soon
    // as it has started. A second one kills at once, as usual.
    let started = false;
    const stopRequested = new Promise<string>((resolve) => {
      const stop = (sig: string): void => {
        if (!started) process.stderr.write(`shadowfs: ${sig}: stopping as soon as the mount has started (again to kill it now)\n`);
        resolve(sig);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    const opened = await openVolume(config, log, { syncAll: syncAllFilesystems, mknod: mknodAt, fallocateFd }).catch((err: unknown) => {
      throw stateDirInUse(err, config.stateDir);
    });
    let fuse: FuseMount | undefined;
    const env = process.env;
    const requestBytes = env.SHADOWFS_SMALL_REQUESTS ? LIBFUSE_MAX_REQUEST_BYTES : MAX_REQUEST_BYTES;
    try {
      fuse = new FuseMount(mountpoint, buildHandlers(opened.volume, log, () => fuse?.context()), {
        fsname: `shadowfs:${config.livePath}`,
        subtype: 'shadowfs',
        allowOther: args['allow-other'],
        // The kernel checks permissions against the caller; the daemon itself runs as root.
        defaultPermissions: true,
        bigWrites: true,
        // One request per 1 MiB read or write instead of eight (FUSE max_pages, which the patched
        // binding negotiates); SHADOWFS_SMALL_REQUESTS=1 keeps libfuse 2's 128 KiB for comparisons.
        maxWriteBytes: requestBytes,
        maxReadBytes: requestBytes,
        // SHADOWFS_NO_POLL_REQUESTS=1: FUSE threads sleep as soon as no request waits (comparisons).
        pollRequests: !env.SHADOWFS_NO_POLL_REQUESTS,
        // SHADOWFS_NO_DIRECT_ANSWERS=1: fast-path reads and writes pass through libfuse (comparisons).
        answerDirectly: !env.SHADOWFS_NO_DIRECT_ANSWERS,
        idlePoll: args['idle-poll'],
        ioUring: args['io-uring'],
        // Cached attributes go stale across link/rename (link counts), and the live volume can
        // change behind our back: ask every time.
        attrTimeoutSeconds: 0,
        entryTimeoutSeconds: 0,
        negativeTimeoutSeconds: 0,
        onHandlerError: (op, err) => log.error('fuse', `${op}: ${(err as Error)?.stack ?? String(err)}`),
      });
      // SHADOWFS_NO_FASTPATH=1 sends every read and write through JS (for comparisons and triage);
      // the other switches turn off one part each.
      if (!env.SHADOWFS_NO_FASTPATH) {
        opened.volume.fastPath.attach(fuse);
        // What the fast paths serve natively still reaches the placement policy.
        if (!env.SHADOWFS_NO_NATIVE_HEAT) opened.nativeHeat.attach(fuse);
        // Native writes and reads of the live file cannot be abandoned on a hung live volume: not
        // where failover must bound every op.
        if (!config.coverageTier && !env.SHADOWFS_NO_NATIVE_WRITES) opened.volume.nativeWrites.attach(fuse);
        if (!config.coverageTier && !env.SHADOWFS_NO_NATIVE_LIVE_READS) opened.volume.fastPath.mapLiveFiles(true);
      }
      await fuse.mount();
    } catch (err) {
      await opened.close();
      throw new ShadowfsError(`cannot mount at ${mountpoint}: ${(err as Error).message}`);
    }
    const control = new ControlServer(socketFile(mountpoint), log);
    const mounted = fuse;
    let reloader: ConfigReloader | undefined;
    let metrics: MetricsServer | undefined;
    let dashboard: DashboardServer | undefined;
    let status: () => StatusReport;
    // Everything after the kernel mount: if any of it fails (a port in use), unmount again rather
    // than leave a mount without a daemon behind it.
    try {
      // With --config the file is watched and reloaded live where safe (src/config/config-reloader.ts).
      reloader = args.config ? new ConfigReloader(path.resolve(args.config), () => volumeConfigFrom(volumeFlags(args)), config, log) : undefined;
      opened.predictive?.setRoundIntervalMs(config.predictor.planIntervalMs); // openVolume starts it at the default
      status = registerControlHandlers(control, {
        volume: opened.volume, placements: opened.placements, predictive: opened.predictive, coverage: opened.coverage, scrubs: opened.scrubs, config, mountpoint, startedAtMs: Date.now(),
        fastPathStats: () => {
          opened.nativeHeat.drain(); // so liveHits counts every native hit so far
          const c = opened.nativeHeat.counters;
          return { ...mounted.fastPathStats(), liveHits: c.liveReads, copyHits: c.reads - c.liveReads, unreported: c.lost + c.unknownHandle };
        }, nativeWriteStats: () => mounted.nativeWriteStats(), reloader, liveWatcher: opened.watcher, failover: opened.failover,
      });
      registerFailoverHandlers(control, opened.failover, opened.coverage);
      await control.start();
      reloader?.onWatchdogChange((w) => opened.failover.setWatchdog(w));
      await reloader?.watch();
      // prom-client costs ~30 ms to load: only mounts that serve metrics load it.
      metrics = args['metrics-port'] !== undefined ? new (await import('../../control/metrics')).MetricsServer(status) : undefined;
      if (metrics) {
        const m = metrics;
        opened.volume.io.onTierRead = (tier, seconds) => m.observeTierRead(tier, seconds);
        const port = await metrics.start(args['metrics-port'] as number);
        process.stdout.write(`shadowfs: metrics at http://127.0.0.1:${port}/metrics\n`);
      }
      dashboard = args['dashboard-port'] !== undefined
        ? new DashboardServer(new DashboardData(mountSources({ volume: opened.volume, placements: opened.placements, predictive: opened.predictive, status, health: { get state() { return opened.failover.healthState; }, transitions: () => opened.failover.transitions() } })))
        : undefined;
      if (dashboard) {
        const port = await dashboard.start(args['dashboard-port'] as number);
        process.stdout.write(`shadowfs: dashboard at http://127.0.0.1:${port}/\n`);
      }
    } catch (err) {
      await reloader?.stop().catch(() => undefined);
      await control.stop().catch(() => undefined);
      await metrics?.stop().catch(() => undefined);
      await dashboard?.stop().catch(() => undefined);
      await fuse.unmount().catch(async () => lazyUnmount(mountpoint));
      await opened.close();
      throw new ShadowfsError(`${mountpoint}: mounted, but could not start serving (${(err as Error).message}); unmounted again`);
    }
    await writePidFile(mountpoint);
    log.info('mount', `mounted ${config.livePath} at ${mountpoint}`);
    process.stdout.write(`shadowfs: ${config.livePath} mounted at ${mountpoint} (${config.tiers.map((t) => t.name).join(', ') || 'no tiers'})\n`);
    started = true;
    const why = await Promise.race([stopRequested, mounted.exited.then(() => 'unmounted from outside (fusermount -u)')]);
    log.info('mount', `${why}: unmounting`);
    const final = status();
    const step = async (what: string, work: Promise<unknown> | undefined): Promise<boolean> => {
      if (!work || (await settlesWithin(work, SHUTDOWN_STEP_MS))) return true;
      log.warn('mount', `${what} did not finish within ${SHUTDOWN_STEP_MS / 1000} s; the unmount goes on`);
      return false;
    };
    await step('stopping the config file watcher', reloader?.stop());
    await step('closing the control socket', control.stop());
    await step('stopping the metrics server', metrics?.stop());
    await step('stopping the dashboard', dashboard?.stop());
    opened.nativeHeat.stop(); // the last native hits, before their counters go with the mount
    if (!(await step('the FUSE unmount', fuse.unmount().catch(async () => lazyUnmount(mountpoint))))) await lazyUnmount(mountpoint).catch(() => undefined);
    await opened.close();
    await removePidFile(mountpoint);
    process.stdout.write(`${formatStatus(final)}\n`);
    process.stdout.write(`shadowfs: unmounted ${mountpoint}\n`);
  },
};

/**
 * Re-run ourselves without --daemon, detached; return once the mount serves (or report why not).
 * The kernel mount alone is not enough: the daemon still starts its control socket, metrics and
 * dashboard, and unmounts again if one fails (a port in use). Its pid file comes last.
 */
async function detach(mountpoint: string, stateDir: string): Promise<void> {
  const logPath = path.join(stateDir, 'shadowfs.log');
  const logFd = fs.openSync(logPath, 'a');
  const logStart = fs.fstatSync(logFd).size;
  const argv = process.argv.slice(1).filter((a) => a !== '--daemon' && a !== '--daemon=true');
  const child = spawn(process.execPath, argv, { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const started = Date.now();
  let saidStarting = false;
  while (Date.now() - started < READY_TIMEOUT_MS) {
    if (!saidStarting && Date.now() - started > STILL_STARTING_MS) {
      saidStarting = true;
      process.stdout.write(`shadowfs: the mount daemon (pid ${child.pid}) is still starting: it walks the tiers and loads the extent map (log ${logPath})\n`);
    }
    if (exited !== undefined) {
      // Its last line says why (the log also holds earlier runs, and a status printed on the way out).
      const last = fs.readFileSync(logPath).subarray(logStart).toString('utf8').trim().split('\n').pop() ?? '';
      throw new ShadowfsError(`the mount daemon exited (code ${exited}): ${last.replace(/^shadowfs: /, '') || `see ${logPath}`}`);
    }
    if (await isMounted(mountpoint) && (await readPid(mountpoint)) === child.pid) {
      child.unref();
      process.stdout.write(`shadowfs: mounted at ${mountpoint} (daemon pid ${child.pid}, log ${logPath})\n`);
      // Where --metrics-port/--dashboard-port 0 ended up, said by the daemon in its log.
      const said = fs.readFileSync(logPath).subarray(logStart).toString('utf8').split('\n').filter((l) => /^shadowfs: (metrics|dashboard) at /.test(l));
      for (const line of said) process.stdout.write(`${line}\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  child.kill('SIGTERM');
  throw new ShadowfsError(`the mount daemon did not mount ${mountpoint} within ${READY_TIMEOUT_MS / 1000} s (log ${logPath})`);
}
