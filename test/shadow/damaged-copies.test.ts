/**
 * Dropped damaged copies are named in the log by path; a tier failing many copies at once names
 * the first few each minute and counts the rest; a copy that was the last home of its bytes is
 * always named, as an error.
 */
import t from 'tap';
import { DamagedCopies, NAMED_PER_MINUTE } from '../../src/shadow/damaged-copies';
import { createLogger } from '../../src/util/log';

function reporter() {
  const lines: string[] = [];
  let now = 1_000_000;
  const report = new DamagedCopies({
    pathsOf: (fileId) => (fileId === 'a1' ? ['/dir/a.bin', '/hard-link'] : []),
    tierName: (id) => (id === 1 ? 'nvme' : 'hdd'),
    log: createLogger('debug', (l) => lines.push(l)),
    nowMs: () => now,
  });
  return { report, lines, advance: (ms: number) => (now += ms) };
}

t.test('a dropped copy is named by its paths, or its id when the mount knows none', async (t) => {
  const { report, lines } = reporter();
  report.dropped('a1', 3, 1, 'failed its checksum', false);
  report.dropped('b2', 0, 2, 'could not be read (EIO)', false);
  t.equal(lines.length, 2);
  t.match(lines[0], /warn.*\/dir\/a\.bin, \/hard-link: the copy of extent 3 on nvme failed its checksum; dropped$/);
  t.match(lines[1], /warn.*file b2: the copy of extent 0 on hdd could not be read \(EIO\); dropped$/);
});

t.test('many at once: the first each minute are named, the rest counted in one line', async (t) => {
  const { report, lines, advance } = reporter();
  for (let i = 0; i < NAMED_PER_MINUTE + 5; i++) report.dropped('a1', i, 1, 'failed its checksum', false);
  t.equal(lines.length, NAMED_PER_MINUTE, 'only the first are named');
  advance(60_000);
  report.dropped('a1', 99, 1, 'failed its checksum', false);
  t.match(lines[NAMED_PER_MINUTE], /5 more damaged copies dropped in the last minute \(not named\)/);
  t.match(lines[NAMED_PER_MINUTE + 1], /extent 99 on nvme/, 'a new minute names again');
});

t.test('a lost extent is an error, named even past the minute\'s limit', async (t) => {
  const { report, lines } = reporter();
  for (let i = 0; i < NAMED_PER_MINUTE; i++) report.dropped('a1', i, 1, 'failed its checksum', false);
  for (let i = 0; i < 3; i++) report.dropped('a1', 100 + i, 1, 'held 0 of its 65536 bytes', true);
  t.equal(lines.length, NAMED_PER_MINUTE + 3);
  t.ok(lines.slice(NAMED_PER_MINUTE).every((l) => /error.*extent 10\d on nvme held 0 of its 65536 bytes; dropped\. It was the last copy of bytes written there while failed over: they are lost\. Reads of that extent fail \(EIO\)/.test(l)));
});
