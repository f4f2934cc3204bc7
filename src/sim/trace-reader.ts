import { createReadStream, promises as fs } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { ShadowfsError } from '../util/errors';

/**
 * Streaming block-trace readers. One record per I/O request; files are read line by line
 * (readline), never whole, and `.gz` files are decompressed on the fly.
 *
 * Formats:
 *  - csv: `timestamp_us,offset_bytes,size_bytes,op` with op R or W (a header line is allowed).
 *  - msr: SNIA / MSR Cambridge `Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime`;
 *    timestamps and response times in Windows filetime units (100 ns; timestamps since 1601),
 *    converted to Unix microseconds. Each Hostname/DiskNumber is its own file in the replay.
 *  - fio-iolog: fio's `fio version 2 iolog`: `<file> add|open|close` and
 *    `<file> read|write <offset> <length>` (sync, datasync, trim are skipped; `wait <usec>` advances
 *    the clock). The format has no timestamps, so records are spaced `iologStepUs` apart in line order.
 *
 * A malformed line throws a TraceError naming the file and line. A last line cut off mid-record
 * (no final newline, or a gzip stream that ends early) is not an error: the reader stops and
 * `summary.truncated` says what was read, so a replay of a partial download still reports.
 */
export type TraceFormat = 'csv' | 'msr' | 'fio-iolog';
export const TRACE_FORMATS: readonly TraceFormat[] = ['csv', 'msr', 'fio-iolog'];

export interface TraceRecord {
  timeUs: number;
  fileId: string;
  offsetBytes: number;
  sizeBytes: number;
  op: 'R' | 'W';
  latencyUs?: number;
  line: number;
}

export interface TraceSummary {
  lines: number;
  records: number;
  skippedLines: number;
  /** Set when the file ended mid-record; says what happened. */
  truncated?: string;
  bytesRead: number;
  totalBytes: number;
}

export class TraceError extends ShadowfsError {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'TraceError';
  }
}

export interface TraceReaderOptions {
  /** fio-iolog only: virtual time between consecutive I/Os. */
  iologStepUs?: number;
}

export const DEFAULT_IOLOG_STEP_US = 1000;

/** Windows filetime (100 ns since 1601-01-01) of the Unix epoch. */
const FILETIME_UNIX_EPOCH = 116_444_736_000_000_000n;

type LineParser = (line: string, lineNo: number) => TraceRecord | undefined;

export class TraceReader {
  readonly summary: TraceSummary = { lines: 0, records: 0, skippedLines: 0, bytesRead: 0, totalBytes: 0 };

  constructor(
    readonly file: string,
    readonly format: TraceFormat,
    private readonly options: TraceReaderOptions = {},
  ) {
    if (!TRACE_FORMATS.includes(format)) throw new ShadowfsError(`unknown trace format "${format}" (use ${TRACE_FORMATS.join(', ')})`);
  }

  async *records(): AsyncGenerator<TraceRecord> {
    let stat;
    try {
      stat = await fs.stat(this.file);
    } catch (err) {
      throw new ShadowfsError(`cannot read trace ${this.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!stat.isFile()) throw new ShadowfsError(`trace ${this.file} is not a file`);
    this.summary.totalBytes = stat.size;
    const gz = this.file.endsWith('.gz');
    const endsWithNewline = gz ? true : await lastByteIsNewline(this.file, stat.size);
    const raw = createReadStream(this.file);
    raw.on('data', (chunk) => {
      this.summary.bytesRead += chunk.length;
    });
    let input: Readable = raw;
    let gzipError: Error | undefined;
    const gunzip = gz ? createGunzip() : undefined;
    if (gunzip) {
      raw.pipe(gunzip);
      input = gunzip;
    }
    const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    // A truncated .gz ends with an error from zlib: stop reading lines and report what was read.
    gunzip?.on('error', (err) => {
      gzipError = err;
      rl.close();
    });
    const parse = this.parser();
    let pending: { text: string; no: number } | undefined;
    let lineNo = 0;
    try {
      for await (const text of rl) {
        lineNo++;
        // One line of lookahead: only the last line may be a truncated record.
        if (pending) {
          const rec = this.parseOne(parse, pending.text, pending.no, false);
          if (rec) yield rec;
        }
        pending = { text, no: lineNo };
      }
    } catch (err) {
      if (!gz) throw err;
      gzipError ??= err as Error;
    }
    if (pending) {
      const lastMayBeCut = !endsWithNewline || gzipError !== undefined;
      const rec = this.parseOne(parse, pending.text, pending.no, lastMayBeCut);
      if (rec) yield rec;
    }
    this.summary.lines = lineNo;
    if (gzipError && !this.summary.truncated) {
      this.summary.truncated = `compressed trace ends early (${gzipError.message}) after line ${lineNo}; replayed the ${this.summary.records} complete records before it`;
    }
  }

  private parseOne(parse: LineParser, text: string, no: number, mayBeCut: boolean): TraceRecord | undefined {
    try {
      const rec = parse(text, no);
      if (rec) this.summary.records++;
      else this.summary.skippedLines++;
      return rec;
    } catch (err) {
      if (mayBeCut && err instanceof TraceError) {
        this.summary.truncated = `trace ends mid-record at line ${no} ("${clip(text)}"); replayed the ${this.summary.records} complete records before it`;
        return undefined;
      }
      throw err;
    }
  }

  private parser(): LineParser {
    switch (this.format) {
      case 'csv':
        return (line, no) => this.parseCsv(line, no);
      case 'msr':
        return (line, no) => this.parseMsr(line, no);
      case 'fio-iolog':
        return this.iologParser();
    }
  }

  private fail(no: number, detail: string): never {
    throw new TraceError(this.file, no, detail);
  }

  private parseCsv(line: string, no: number): TraceRecord | undefined {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return undefined;
    const f = t.split(',');
    if (no === 1 && !/^\d/.test(f[0])) return undefined; // header
    if (f.length !== 4) this.fail(no, `expected 4 fields timestamp_us,offset_bytes,size_bytes,op, got ${f.length}: "${clip(t)}"`);
    const timeUs = this.uint(f[0], 'timestamp_us', no);
    const offsetBytes = this.uint(f[1], 'offset_bytes', no);
    const sizeBytes = this.uint(f[2], 'size_bytes', no);
    const op = f[3].trim().toUpperCase();
    if (op !== 'R' && op !== 'W') this.fail(no, `op must be R or W, got "${clip(f[3])}"`);
    return { timeUs, fileId: 'trace', offsetBytes, sizeBytes, op, line: no };
  }

  private parseMsr(line: string, no: number): TraceRecord | undefined {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return undefined;
    const f = t.split(',');
    if (no === 1 && f[0] === 'Timestamp') return undefined;
    if (f.length !== 7) this.fail(no, `expected 7 fields Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime, got ${f.length}: "${clip(t)}"`);
    if (!/^\d+$/.test(f[0])) this.fail(no, `Timestamp must be a Windows filetime integer, got "${clip(f[0])}"`);
    // Filetimes exceed 2^53: convert with BigInt, then the microsecond value fits a double exactly.
    const timeUs = Number((BigInt(f[0]) - FILETIME_UNIX_EPOCH) / 10n);
    const type = f[3].trim().toLowerCase();
    if (type !== 'read' && type !== 'write') this.fail(no, `Type must be Read or Write, got "${clip(f[3])}"`);
    const offsetBytes = this.uint(f[4], 'Offset', no);
    const sizeBytes = this.uint(f[5], 'Size', no);
    const latencyUs = this.uint(f[6], 'ResponseTime', no) / 10;
    return { timeUs, fileId: `${f[1]}/${f[2]}`, offsetBytes, sizeBytes, op: type === 'read' ? 'R' : 'W', latencyUs, line: no };
  }

  private iologParser(): LineParser {
    let sawHeader = false;
    let clockUs = 0;
    const step = this.options.iologStepUs ?? DEFAULT_IOLOG_STEP_US;
    return (line, no) => {
      const t = line.trim();
      if (!sawHeader) {
        if (t === '') return undefined;
        if (t !== 'fio version 2 iolog') this.fail(no, `expected the header "fio version 2 iolog", got "${clip(t)}"`);
        sawHeader = true;
        return undefined;
      }
      if (t === '') return undefined;
      const f = t.split(/\s+/);
      // File names may not contain spaces in iolog v2, so the action is always the second field.
      const action = f[1];
      switch (action) {
        case 'add':
        case 'open':
        case 'close':
          if (f.length !== 2) this.fail(no, `"${action}" takes no arguments: "${clip(t)}"`);
          return undefined;
        case 'sync':
        case 'datasync':
        case 'trim':
          return undefined;
        case 'wait':
          clockUs += this.uint(f[2] ?? '', 'wait usec', no);
          return undefined;
        case 'read':
        case 'write': {
          if (f.length !== 4) this.fail(no, `expected "<file> ${action} <offset> <length>", got "${clip(t)}"`);
          const offsetBytes = this.uint(f[2], 'offset', no);
          const sizeBytes = this.uint(f[3], 'length', no);
          const rec: TraceRecord = { timeUs: clockUs, fileId: f[0], offsetBytes, sizeBytes, op: action === 'read' ? 'R' : 'W', line: no };
          clockUs += step;
          return rec;
        }
        default:
          return this.fail(no, `unknown iolog action "${clip(action ?? '')}" (expected add, open, close, read, write, sync, datasync, trim, wait)`);
      }
    };
  }

  private uint(s: string, what: string, no: number): number {
    const v = s.trim();
    if (!/^\d+$/.test(v)) this.fail(no, `${what} must be a non-negative integer, got "${clip(v)}"`);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) this.fail(no, `${what} is too large: ${clip(v)}`);
    return n;
  }
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

async function lastByteIsNewline(file: string, size: number): Promise<boolean> {
  if (size === 0) return true;
  const fh = await fs.open(file, 'r');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0] === 0x0a;
  } finally {
    await fh.close();
  }
}
