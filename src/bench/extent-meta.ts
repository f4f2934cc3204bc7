/**
 * `node dist/src/bench/extent-meta.js STATE_DIR`: how many bytes of metadata shadowfs keeps per
 * extent, measured offline on a state directory whose mount has been unmounted (LevelDB allows
 * one opener). Prints one JSON object:
 *
 *   extentRecords        records in the extent map (extents that have or had a copy)
 *   extentsWithCopies    records that list at least one copy
 *   copies               copies listed over all records
 *   dirBytes             apparent size of <state>/extents as the daemon left it (all LevelDB
 *                        files: tables, write-ahead log, manifest, and LevelDB's text LOG)
 *   dataFileBytes        the same without LevelDB's text info LOG/LOG.old and LOCK
 *   payloadBytes         keys + values of the extent records that list a copy (the floor)
 *   dirBytesPerExtent    dirBytes / extentsWithCopies
 *   payloadBytesPerExtent payloadBytes / extentsWithCopies
 *
 * The directory sizes are read before the database is opened: opening it folds the write-ahead
 * log into a table, which changes them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import { decodeExtentRecord } from '../extents/record-codec';

/** Same key layout as src/extents/extent-map.ts. */
const EXTENT_PREFIX = 'e!';
const NOT_DATA = new Set(['LOG', 'LOG.old', 'LOCK']);

export interface ExtentMeta {
  extentRecords: number;
  extentsWithCopies: number;
  copies: number;
  dirBytes: number;
  dataFileBytes: number;
  payloadBytes: number;
  dirBytesPerExtent: number | null;
  payloadBytesPerExtent: number | null;
}

function dirSizes(dir: string): { all: number; data: number } {
  let all = 0;
  let data = 0;
  for (const name of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, name));
    if (!st.isFile()) continue;
    all += st.size;
    if (!NOT_DATA.has(name)) data += st.size;
  }
  return { all, data };
}

export async function measureExtentMeta(stateDir: string): Promise<ExtentMeta> {
  const dir = path.join(stateDir, 'extents');
  const sizes = dirSizes(dir);
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  let extentRecords = 0;
  let extentsWithCopies = 0;
  let copies = 0;
  let payloadBytes = 0;
  try {
    for await (const [key, value] of db.iterator({ gte: EXTENT_PREFIX, lt: 'e"' })) {
      extentRecords++;
      const rec = decodeExtentRecord(value);
      if (rec.copies.length === 0) continue;
      extentsWithCopies++;
      copies += rec.copies.length;
      payloadBytes += Buffer.byteLength(key) + value.length;
    }
  } finally {
    await db.close();
  }
  const per = (bytes: number): number | null => (extentsWithCopies > 0 ? Math.round((10 * bytes) / extentsWithCopies) / 10 : null);
  return {
    extentRecords,
    extentsWithCopies,
    copies,
    dirBytes: sizes.all,
    dataFileBytes: sizes.data,
    payloadBytes,
    dirBytesPerExtent: per(sizes.all),
    payloadBytesPerExtent: per(payloadBytes),
  };
}

if (require.main === module) {
  const stateDir = process.argv[2];
  if (!stateDir) {
    process.stderr.write('usage: extent-meta STATE_DIR\n');
    process.exit(2);
  }
  measureExtentMeta(stateDir).then(
    (m) => process.stdout.write(JSON.stringify(m) + '\n'),
    (err: unknown) => {
      process.stderr.write(`extent-meta: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
