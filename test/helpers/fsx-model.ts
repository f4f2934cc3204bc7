/**
 * The model behind the randomized tests through a mount (failover-fsx, tiers-fsx; in the spirit of
 * fsx.test.ts): files with seeded bytes and modes, directories, open handles that follow their
 * file across renames; random ops applied through the mount and to the model alike; and the checks
 * (a read through a handle, a whole file through a new open, a whole tree) that compare the two.
 *
 * Every draw comes from the caller's seeded random source, in a fixed order, so a seed replays the
 * same ops (the caller's own draws, between ops, included).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { cli } from './mounted-volume';
import { treeDifferences, treeDigest, TreeDigest } from '../../fixtures/failover-bench/tree-digest';
import { seededRandom } from '../../src/util/seeded-random';

/** The model's extent size: the mounts of the fsx tests use `extentSize: '16KiB'`. */
export const FSX_EXTENT_BYTES = 16 * 1024;
/** Writes and truncates keep files below this size. */
export const FSX_MAX_FILE_BYTES = 24 * FSX_EXTENT_BYTES;

/**
 * A run's knobs from the environment: SHADOWFS_<name>_SEED replays a run (default: one from the
 * clock), SHADOWFS_<name>_OPS sets the op count, SHADOWFS_<name>_TRACE=1 prints every op.
 */
export function fsxKnobs(name: string, defaultOps: number): { seed: number; ops: number; trace: (message: string) => void } {
  const env = (knob: string): string | undefined => process.env[`SHADOWFS_${name}_${knob}`];
  return {
    seed: Number(env('SEED') ?? Date.now() % 1_000_000),
    ops: Number(env('OPS') ?? defaultOps),
    trace: env('TRACE') ? (message) => void process.stderr.write(message + '\n') : () => undefined,
  };
}

/** `n` bytes from seed `s`. */
export function seededBytes(s: number, n: number): Buffer {
  const r = seededRandom(s);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

export interface ModelFile {
  data: Buffer;
  mode: number;
}

/** The part of a tap test the model reports to. */
export interface FsxReporter {
  fail(message: string): unknown;
  comment(message: string): unknown;
}

export type FsxOp = 'read' | 'write' | 'truncate' | 'rename' | 'create' | 'unlink' | 'dir' | 'fsync' | 'chmod' | 'read-whole' | 'close-all' | 'pause';

/**
 * Which op a draw in [0, 1) picks: the first entry whose bound is above it, skipping the ops that
 * work on a file while there is none. The last entry's bound should be 1: it takes the rest.
 */
export type FsxOpTable = readonly (readonly [FsxOp, number])[];

/** The ops that need an existing file to work on. */
const ON_A_FILE = new Set<FsxOp>(['read', 'write', 'truncate', 'rename', 'unlink', 'fsync', 'chmod', 'read-whole']);

export interface FsxModelOptions {
  t: FsxReporter;
  /** The mount point: model paths ('/f0') are below it. */
  mnt: string;
  rand: () => number;
  /** The names files may have (in a directory of `dirs`, or in the root). */
  files: readonly string[];
  /** Directories the 'dir' op makes, removes when empty, and renames into one another. */
  dirs?: readonly string[];
  /** Default FSX_EXTENT_BYTES. */
  extentBytes?: number;
  /** Writes and truncates stay below this size (default FSX_MAX_FILE_BYTES). */
  maxSizeBytes?: number;
  ops: FsxOpTable;
  /** Said with every failure (what happened last, how to replay the run). */
  note: () => string;
  /** Said after the op number of an op that went wrong (e.g. live or failed over). */
  opState?: () => string;
  trace: (message: string) => void;
}

const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';

export class FsxModel {
  readonly files = new Map<string, ModelFile>();
  readonly dirs = new Set<string>();
  /** Files written, truncated or made since their last fsync (said with a failure). */
  readonly unsynced = new Set<string>();
  private readonly fds = new Map<string, number>();
  private failed = 0;

  constructor(private readonly o: FsxModelOptions) {}

  /** Failures so far (only the first five are reported). */
  get failures(): number {
    return this.failed;
  }

  int(n: number): number {
    return Math.floor(this.o.rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** The path of `p` through the mount. */
  m(p: string): string {
    return this.o.mnt + p;
  }

  /** A file made through the mount (the start of a run). */
  writeFile(p: string, data: Buffer): void {
    fs.writeFileSync(this.m(p), data);
    this.files.set(p, { data, mode: 0o644 });
    this.unsynced.add(p);
  }

  mkdir(d: string): void {
    fs.mkdirSync(this.m(d));
    this.dirs.add(d);
  }

  /** The files there are, in the order of the names given. */
  existing(): string[] {
    return this.o.files.filter((p) => this.files.has(p));
  }

  /** Names a file could take: free or not, in a directory that exists. */
  private placeable(): string[] {
    return this.o.files.filter((p) => parentOf(p) === '/' || this.dirs.has(parentOf(p)));
  }

  // ---- open handles (by path; they follow their file across renames) ----

  private fdOf(p: string): number {
    let fd = this.fds.get(p);
    if (fd === undefined) {
      fd = fs.openSync(this.m(p), 'r+');
      this.fds.set(p, fd);
    }
    return fd;
  }

  close(p: string): void {
    const fd = this.fds.get(p);
    if (fd === undefined) return;
    this.fds.delete(p);
    fs.closeSync(fd);
  }

  closeAll(): void {
    for (const p of [...this.fds.keys()]) this.close(p);
  }

  /** A file renamed: the model's entry, its open handle and its fsync state go with it. */
  private moved(from: string, to: string): void {
    this.files.set(to, this.files.get(from) as ModelFile);
    this.files.delete(from);
    this.unsynced.delete(to);
    if (this.unsynced.delete(from)) this.unsynced.add(to);
    const fd = this.fds.get(from);
    this.fds.delete(from);
    if (fd !== undefined) this.fds.set(to, fd);
  }

  // ---- checks ----

  fail(message: string): void {
    this.failed++;
    if (this.failed <= 5) this.o.t.fail(`${message} (${this.o.note()})`);
  }

  /** Where the file's extents are (`shadowfs which-tier`), for the analysis of a failure. */
  whichTier(p: string): string {
    return cli(['which-tier', this.m(p)]).stdout.trim();
  }

  private syncNote(p: string): string {
    return this.unsynced.has(p) ? ' (written since its last fsync)' : " (fsync'd since its last change)";
  }

  /** Which extents of `got` differ from `want` (the first few), to say where a file went wrong. */
  differingExtents(got: Buffer, want: Buffer): string {
    const E = this.o.extentBytes ?? FSX_EXTENT_BYTES;
    const out: string[] = [];
    for (let i = 0; i * E < Math.max(got.length, want.length) && out.length < 8; i++) {
      const a = got.subarray(i * E, (i + 1) * E);
      const b = want.subarray(i * E, (i + 1) * E);
      if (a.equals(b)) continue;
      let first = 0;
      while (first < Math.min(a.length, b.length) && a[first] === b[first]) first++;
      let last = Math.min(a.length, b.length) - 1;
      while (last > first && a[last] === b[last]) last--;
      out.push(`extent ${i} bytes ${first}..${last}${a.length !== b.length ? ` (length ${a.length} vs ${b.length})` : ''}${a.subarray(first, last + 1).every((x) => x === 0) ? ' are zeros' : ''}`);
    }
    return out.join(', ');
  }

  /** The model as treeDigest shows a directory. */
  tree(): TreeDigest {
    const out: TreeDigest = {};
    for (const d of this.dirs) out[d] = 'dir 755';
    for (const [p, f] of this.files) out[p] = `file ${f.mode.toString(8)} ${f.data.length} ${createHash('sha256').update(f.data).digest('hex')}`;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** The tree below `root` (the mount, or the live directory) holds exactly the model. */
  sameTree(root: string, what: string): void {
    let got: TreeDigest;
    try {
      got = treeDigest(root);
    } catch (err) {
      this.fail(`${what}: reading the tree failed: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      return;
    }
    const want = this.tree();
    const diff = treeDifferences(got, want);
    if (diff.length === 0) return;
    const detail = (p: string): string => {
      const f = this.files.get(p);
      if (!f || !got[p]?.startsWith('file')) return '';
      return `: ${this.differingExtents(fs.readFileSync(root + p), f.data)}${this.syncNote(p)}`;
    };
    this.fail(`${what}: differs from the model at ${diff.map((p) => `${p} (got ${got[p] ?? 'nothing'}, want ${want[p] ?? 'nothing'}${detail(p)})`).join('; ')}`);
  }

  /** Every file read whole through a new open holds the model's bytes. */
  mountReadsModel(what: string): void {
    for (const [p, f] of this.files) {
      let got: Buffer;
      try {
        got = fs.readFileSync(this.m(p));
      } catch (err) {
        this.fail(`${what}: ${p} could not be read through a new open: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
        continue;
      }
      if (!got.equals(f.data)) {
        this.fail(`${what}: ${p} reads back ${got.length} bytes through a new open, expected ${f.data.length}: ${this.differingExtents(got, f.data)}${this.syncNote(p)}`);
        this.o.t.comment(this.whichTier(p));
      }
    }
  }

  // ---- the random ops ----

  /** One random op (op number `op`), through the mount and on the model; a wrong byte or an error is a failure. */
  async randomOp(op: number): Promise<void> {
    const names = this.existing();
    const n = names.length > 0 ? this.pick(names) : undefined;
    const what = this.o.rand();
    const table = this.o.ops;
    const kind = (table.find(([k, below]) => what < below && (n !== undefined || !ON_A_FILE.has(k))) ?? table[table.length - 1])[0];
    const at = `op ${op}${this.o.opState ? ` (${this.o.opState()})` : ''}`;
    let desc = kind as string;
    const say = (d: string): void => {
      desc = d;
      this.o.trace(`${op} ${d}`);
    };
    try {
      if (n !== undefined && ON_A_FILE.has(kind)) await this.onFile(kind, n, at, say);
      else await this.elsewhere(kind, say);
    } catch (err) {
      this.fail(`${at}: ${desc} failed: ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      // Where the file's extents were, for the analysis.
      if (n !== undefined && this.files.has(n)) this.o.t.comment(this.whichTier(n));
    }
  }

  private async onFile(kind: FsxOp, n: string, at: string, say: (desc: string) => void): Promise<void> {
    const { extentBytes: E = FSX_EXTENT_BYTES, maxSizeBytes: MAX = FSX_MAX_FILE_BYTES } = this.o;
    const f = this.files.get(n) as ModelFile;
    switch (kind) {
      case 'read': {
        const off = this.int(f.data.length + E);
        const len = 1 + this.int(E * 2.5);
        say(`read ${n} ${off} ${len} (size ${f.data.length})`);
        const got = Buffer.alloc(len);
        const r = fs.readSync(this.fdOf(n), got, 0, len, off);
        const want = f.data.subarray(Math.min(off, f.data.length), Math.min(off + len, f.data.length));
        if (r !== want.length || !got.subarray(0, r).equals(want)) {
          this.fail(`${at}: read ${n} [${off}, +${len}) got ${r} bytes, expected ${want.length}${r === want.length ? ' (other bytes)' : ''}${this.syncNote(n)}`);
          this.o.t.comment(this.whichTier(n));
        }
        return;
      }
      case 'write': {
        // One write, or (one in four) a stream of consecutive writes, which soon writes around copies.
        const writes = this.o.rand() < 0.25 ? 2 + this.int(5) : 1;
        let off = this.int(Math.min(MAX, f.data.length + E));
        for (let w = 0; w < writes && off < MAX; w++) {
          const len = 1 + this.int(Math.min(E * 3, MAX - off));
          const data = this.bytes(len);
          say(`write ${n} ${off} ${len} (size ${f.data.length})`);
          fs.writeSync(this.fdOf(n), data, 0, len, off);
          const next = Buffer.alloc(Math.max(f.data.length, off + len));
          f.data.copy(next);
          data.copy(next, off);
          f.data = next;
          this.unsynced.add(n);
          off += len;
        }
        return;
      }
      case 'truncate': {
        const size = this.int(MAX);
        const viaFd = this.o.rand() < 0.5;
        say(`truncate ${n} ${size} (size ${f.data.length}, ${viaFd ? 'ftruncate' : 'truncate'})`);
        if (viaFd) fs.ftruncateSync(this.fdOf(n), size);
        else fs.truncateSync(this.m(n), size);
        const next = Buffer.alloc(size);
        f.data.copy(next, 0, 0, Math.min(size, f.data.length));
        f.data = next;
        this.unsynced.add(n);
        return;
      }
      case 'rename': {
        // Over a free name or over another file; an open handle follows its file.
        const to = this.pick(this.placeable());
        if (to === n) return;
        say(`rename ${n} ${to}${this.files.has(to) ? ' (replacing)' : ''}`);
        this.close(to);
        fs.renameSync(this.m(n), this.m(to));
        this.moved(n, to);
        return;
      }
      case 'unlink':
        say(`unlink ${n}`);
        this.close(n);
        fs.unlinkSync(this.m(n));
        this.files.delete(n);
        this.unsynced.delete(n);
        return;
      case 'fsync':
        say(`fsync ${n}`);
        if (this.o.rand() < 0.5) fs.fsyncSync(this.fdOf(n));
        else fs.fdatasyncSync(this.fdOf(n));
        this.unsynced.delete(n);
        return;
      case 'chmod': {
        const next = this.pick([0o600, 0o640, 0o644]);
        say(`chmod ${n} ${next.toString(8)}`);
        fs.chmodSync(this.m(n), next);
        f.mode = next;
        return;
      }
      case 'read-whole': {
        // Through a new open.
        say(`read whole ${n}`);
        const got = fs.readFileSync(this.m(n));
        if (!got.equals(f.data)) {
          this.fail(`${at}: ${n} read whole gave ${got.length} bytes, expected ${f.data.length}: ${this.differingExtents(got, f.data)}${this.syncNote(n)}`);
          this.o.t.comment(this.whichTier(n));
        }
        return;
      }
      default:
        throw new Error(`${kind} is not an op on a file`);
    }
  }

  private async elsewhere(kind: FsxOp, say: (desc: string) => void): Promise<void> {
    switch (kind) {
      case 'create': {
        const free = this.placeable().filter((p) => !this.files.has(p));
        if (free.length === 0) return;
        const p = this.pick(free);
        const data = this.bytes(this.int(3 * (this.o.extentBytes ?? FSX_EXTENT_BYTES)));
        say(`create ${p} ${data.length}`);
        const fd = fs.openSync(this.m(p), 'wx+');
        fs.writeSync(fd, data, 0, data.length, 0);
        this.fds.set(p, fd);
        this.files.set(p, { data, mode: 0o644 });
        this.unsynced.add(p);
        return;
      }
      case 'dir':
        return this.dirOp(say);
      case 'pause':
        // Lets background copies land, so that later reads come from the tiers.
        say('pause');
        await new Promise((r) => setTimeout(r, 30));
        return;
      default:
        say('close all');
        this.closeAll();
    }
  }

  /** A directory: made, removed when empty, or renamed (with what is in it) to a free name. */
  private dirOp(say: (desc: string) => void): void {
    const all = this.o.dirs ?? [];
    if (all.length === 0) return;
    const d = this.pick(all);
    const other = all.find((x) => x !== d);
    const inside = (dir: string): string[] => [...this.files.keys()].filter((p) => parentOf(p) === dir);
    if (!this.dirs.has(d)) {
      say(`mkdir ${d}`);
      this.mkdir(d);
    } else if (inside(d).length === 0 && this.o.rand() < 0.6) {
      say(`rmdir ${d}`);
      fs.rmdirSync(this.m(d));
      this.dirs.delete(d);
    } else if (other !== undefined && !this.dirs.has(other)) {
      // Only names the model knows may end up inside (/d/g1 may have no twin under /e).
      const moved = inside(d);
      if (!moved.every((p) => this.o.files.includes(other + p.slice(d.length)))) return;
      say(`rename ${d} ${other} (${moved.length} files)`);
      fs.renameSync(this.m(d), this.m(other));
      this.dirs.delete(d);
      this.dirs.add(other);
      for (const p of moved) this.moved(p, other + p.slice(d.length));
    }
  }
}
