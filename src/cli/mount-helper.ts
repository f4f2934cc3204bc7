/**
 * `mount.shadowfs` / `mount.fuse.shadowfs`: the mount(8) helper. util-linux runs
 *
 *   /sbin/mount.fuse.shadowfs CONFIG MOUNTPOINT [-sfnv] [-N ns] -o OPTIONS     (mount -t fuse.shadowfs, fstab)
 *   /sbin/mount.shadowfs      CONFIG MOUNTPOINT [-sfnv] [-N ns] -o OPTIONS     (mount -t shadowfs)
 *
 * (it looks only in /sbin, /sbin/fs.d and /sbin/fs; for fuse.shadowfs without mount.fuse.shadowfs it
 * would fall back to Debian's mount.fuse, which runs `shadowfs CONFIG MOUNTPOINT -o ...` from PATH,
 * a form the shadowfs CLI does not take). mount(8) always passes `rw` and drops noauto, x-*, comment
 * and `defaults` itself; _netdev, nofail, user... still arrive. The helper turns the options into
 * `shadowfs mount --config CONFIG ... --daemon MOUNTPOINT` and, like every mount helper, returns once
 * the file system is mounted (exit 0), or says why not on one line (exit 1: bad usage or option,
 * 32: the mount failed, as mount(8) documents). The same volume already mounted at the same point
 * is success: `mount -a` skips mounted fstab entries by comparing sources, and ours never match
 * (the kernel shows shadowfs:LIVE, fstab the config file), so without this a second `mount -a` fails.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ShadowfsError } from '../util/errors';
import { readConfigFile } from './load-config';

export const EXIT_USAGE = 1;
export const EXIT_MOUNT_FAILURE = 32;

export interface HelperInvocation {
  /** The config file, or "none" when every setting comes from options (live=..., tier=...). */
  source: string;
  mountpoint: string;
  /** The -o options, split at commas, in order. */
  options: string[];
  /** -f: do everything but mount. */
  fake: boolean;
  /** -s: tolerate options we do not know (mount -s, SloppyOptions=yes). */
  sloppy: boolean;
  /** -v: say what is run. */
  verbose: boolean;
}

/**
 * Options that mean something to mount(8), fstab or systemd, not to the file system. Accepted and
 * ignored (also when the helper is run by hand with an fstab line's options).
 */
const FSTAB_ONLY = new Set(['defaults', 'auto', 'noauto', 'user', 'users', 'nouser', 'owner', 'group', 'nofail', '_netdev']);
const FSTAB_ONLY_PREFIXES = ['x-', 'comment='];

/**
 * Accepted because they already hold for every shadowfs mount: it is read-write, the daemon runs
 * as root with allow_other and default_permissions, and libfuse mounts nosuid,nodev.
 */
const ALREADY_SO = new Set(['rw', 'allow_other', 'default_permissions', 'nosuid', 'nodev']);

/** shadowfs options: -o name → `shadowfs mount` flag. Values are checked by `shadowfs mount` itself. */
const VALUE_OPTIONS: Record<string, string> = {
  live: '--live',
  state: '--state',
  tier: '--tier',
  extent_size: '--extent-size',
  admit_after: '--admit-after',
  write_around_after: '--write-around-after',
  copy_rate: '--copy-rate',
  scrub_interval: '--scrub-interval',
  coverage_tier: '--coverage-tier',
  placement: '--placement',
  metrics_port: '--metrics-port',
  dashboard_port: '--dashboard-port',
};
const FLAG_OPTIONS: Record<string, string> = {
  verbose: '--verbose',
  watch_live: '--watch-live',
};

/** Why some well-known options are refused, so the one line says more than "unknown". */
const REFUSED: Record<string, string> = {
  ro: 'read-only mounts are not supported (a shadowfs mount is read-write)',
  allow_root: 'a shadowfs mount always allows other users (allow_other)',
  suid: 'shadowfs mounts are always nosuid',
  dev: 'shadowfs mounts are always nodev',
};

const KNOWN_LIST = [...Object.keys(VALUE_OPTIONS).map((k) => `${k}=`), ...Object.keys(FLAG_OPTIONS), ...ALREADY_SO].join(', ');

/** Inside one comma-free mount option a tier spec separates its parts with ':' (cap=, class=...). */
const TIER_PART = /:(?=(?:cap|capacity|class|cost|bucket|prefix|region|cache|cache-cap)=)/g;

export function parseHelperArgv(argv: readonly string[]): HelperInvocation {
  const positional: string[] = [];
  const inv: Omit<HelperInvocation, 'source' | 'mountpoint'> = { options: [], fake: false, sloppy: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new ShadowfsError(`option ${a} needs a value`, EXIT_USAGE);
      return v;
    };
    if (a === '-o') inv.options.push(...value().split(',').filter(Boolean));
    else if (a.startsWith('-o') && a.length > 2) inv.options.push(...a.slice(2).split(',').filter(Boolean));
    else if (a === '-t') {
      const type = value();
      if (!['shadowfs', 'fuse.shadowfs', 'fuse'].includes(type)) throw new ShadowfsError(`file system type "${type}" is not shadowfs`, EXIT_USAGE);
    } else if (a === '-N') throw new ShadowfsError('mounting in another namespace (-N) is not supported', EXIT_USAGE);
    else if (/^-[sfnv]+$/.test(a)) {
      if (a.includes('s')) inv.sloppy = true;
      if (a.includes('f')) inv.fake = true;
      if (a.includes('v')) inv.verbose = true;
      // -n (do not write /etc/mtab): there is no mtab to write.
    } else if (a.startsWith('-') && a !== '-') throw new ShadowfsError(`unknown flag ${a} (see mount.shadowfs --help)`, EXIT_USAGE);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new ShadowfsError('usage: mount.shadowfs CONFIG MOUNTPOINT [-sfnv] [-o OPTIONS] (see --help)', EXIT_USAGE);
  return { source: positional[0], mountpoint: positional[1], ...inv };
}

/** The `shadowfs mount` arguments for an invocation; unknown options are refused unless sloppy. */
export function shadowfsMountArgs(inv: HelperInvocation): string[] {
  const args = ['mount'];
  if (inv.source !== 'none') args.push('--config', path.resolve(inv.source));
  for (const raw of inv.options) {
    const eq = raw.indexOf('=');
    // extent-size and extent_size alike: the CLI's spelling and the mount-option spelling.
    const name = (eq < 0 ? raw : raw.slice(0, eq)).replace(/-/g, '_');
    const val = eq < 0 ? undefined : raw.slice(eq + 1);
    if (FSTAB_ONLY.has(raw) || FSTAB_ONLY_PREFIXES.some((p) => raw.startsWith(p)) || ALREADY_SO.has(raw)) continue;
    if (name in VALUE_OPTIONS) {
      if (!val) throw new ShadowfsError(`mount option ${name} needs a value (${name}=...)`, EXIT_USAGE);
      args.push(VALUE_OPTIONS[name], name === 'tier' ? val.replace(TIER_PART, ',') : val);
    } else if (name in FLAG_OPTIONS && val === undefined) args.push(FLAG_OPTIONS[name]);
    else if (inv.sloppy) continue;
    else if (raw in REFUSED) throw new ShadowfsError(`mount option ${raw}: ${REFUSED[raw]}`, EXIT_USAGE);
    else throw new ShadowfsError(`unknown mount option "${raw}" (shadowfs takes ${KNOWN_LIST}; fstab options like defaults, _netdev, nofail, noauto, x-systemd.* are ignored)`, EXIT_USAGE);
  }
  args.push('--daemon', path.resolve(inv.mountpoint));
  return args;
}

/** The live directory an invocation mounts (live= wins over the config file), if it can tell. */
function livePathOf(inv: HelperInvocation): string | undefined {
  const opt = [...inv.options].reverse().find((o) => o.startsWith('live='));
  if (opt) return path.resolve(opt.slice('live='.length));
  if (inv.source === 'none') return undefined;
  try {
    const live = readConfigFile(inv.source).live;
    return typeof live === 'string' ? path.resolve(live) : undefined;
  } catch {
    return undefined; // `shadowfs mount` says what is wrong with the file
  }
}

/** True when a shadowfs mount of this same live volume is already at the mount point. */
function alreadyMounted(inv: HelperInvocation): boolean {
  const live = livePathOf(inv);
  if (!live) return false;
  const r = spawnSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--mountpoint', path.resolve(inv.mountpoint)], { encoding: 'utf8' });
  if (r.status !== 0) return false;
  return r.stdout.split('\n').some((l) => l.trim() === `fuse.shadowfs shadowfs:${live}`);
}

export const HELPER_USAGE = `usage: mount.shadowfs CONFIG|none MOUNTPOINT [-sfnv] [-o OPTIONS]

The mount(8) helper of shadowfs (also installed as mount.fuse.shadowfs): runs
\`shadowfs mount --config CONFIG ... --daemon MOUNTPOINT\` and returns once mounted.

  -o OPTIONS  comma-separated:
                live=DIR state=DIR tier=NAME=PATH:cap=SIZE[:class=C][:cost=USD] (repeatable)
                extent_size=SIZE admit_after=N write_around_after=SIZE|off
                copy_rate=SIZE coverage_tier=NAME
                placement=reactive|predictive metrics_port=PORT dashboard_port=PORT
                watch_live verbose
              always true, accepted: rw allow_other default_permissions nosuid nodev
              for mount/fstab/systemd, ignored: defaults auto noauto user users nouser nofail
                _netdev x-* comment=
  -s          ignore unknown options instead of refusing them
  -f          check the options, do not mount
  -v          print the shadowfs command line and its output
  -n          accepted (there is no /etc/mtab to write)

Exit status: 0 mounted (or this volume already is), 1 bad usage or option, 32 the mount failed.
`;

/** Runs the helper; returns the exit status. `cli` is bin/shadowfs. */
export function runMountHelper(argv: readonly string[], cli: string, progName = 'mount.shadowfs'): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELPER_USAGE);
    return 0;
  }
  let args: string[];
  let inv: HelperInvocation;
  try {
    inv = parseHelperArgv(argv);
    args = shadowfsMountArgs(inv);
  } catch (err) {
    if (!(err instanceof ShadowfsError)) throw err;
    process.stderr.write(`${progName}: ${err.message}\n`);
    return err.exitCode;
  }
  if (inv.verbose) process.stderr.write(`${progName}: shadowfs ${args.join(' ')}\n`);
  if (inv.fake) return 0;
  if (alreadyMounted(inv)) {
    if (inv.verbose) process.stderr.write(`${progName}: ${path.resolve(inv.mountpoint)} already has this volume mounted\n`);
    return 0;
  }
  // The daemon's own lines ("mounted at ... daemon pid ...") only under -v: mount helpers are quiet
  // on success. Errors (one line, "shadowfs: ...") always reach stderr.
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', inv.verbose ? 'inherit' : 'ignore', 'inherit'] });
  if (r.error) {
    process.stderr.write(`${progName}: cannot run ${cli}: ${r.error.message}\n`);
    return EXIT_MOUNT_FAILURE;
  }
  return r.status === 0 ? 0 : EXIT_MOUNT_FAILURE;
}


/** Run by bin/mount.shadowfs. */
if (require.main === module) {
  process.exitCode = runMountHelper(process.argv.slice(2), path.resolve(__dirname, '../../../bin/shadowfs'));
}
