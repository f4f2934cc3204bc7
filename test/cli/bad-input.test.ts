/**
 * Bad input is refused with one clear line and a non-zero exit, before anything is touched.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, makeSandbox, removeSandbox, Sandbox, isMounted } from '../helpers/mounted-volume';
import { startS3Server, useS3Credentials } from '../helpers/s3-server';

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

function expectRefusal(t: Test, sb: Sandbox, args: string[], pattern: RegExp, exitCode = 1): void {
  const before = listTree(sb.root);
  const r = cli(args);
  t.equal(r.status, exitCode, `exit ${exitCode} for: ${args.join(' ')}`);
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], pattern, 'says what is wrong');
  t.notOk(/\n\s+at /.test(r.stderr), 'no stack trace');
  t.ok(lines.length <= 2, `a short message (${lines.length} lines): ${r.stderr}`);
  t.same(listTree(sb.root), before, 'nothing touched');
  t.notOk(isMounted(sb.mnt), 'nothing mounted');
}


t.test('bad mount input', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  const tier = (extra = ''): string => `nvme=${sb.tierDir('nvme')},cap=64MiB${extra}`;
  fs.mkdirSync(sb.tierDir('nvme'));
  fs.writeFileSync(path.join(sb.live, 'keep.txt'), 'live data');

  expectRefusal(t, sb, ['mount', '--live', sb.live, sb.mnt, '--bogus-flag'], /Unknown argument: bogus-flag$/, 2);
  expectRefusal(t, sb, ['mount', '--live', path.join(sb.root, 'missing'), '--state', sb.state, '--tier', tier(), sb.mnt], /live volume .*missing does not exist/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), path.join(sb.root, 'nomnt')], /mount point .*nomnt does not exist/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), sb.live], /must not contain each other/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${path.join(sb.live, 'shadow')},cap=1GiB`, sb.mnt], /overlaps the live volume/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), '--tier', `ssd=${path.join(sb.tierDir('nvme'), 'inner')},cap=1GiB`, sb.mnt], /overlaps tier nvme/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')},cap=12parsecs`, sb.mnt], /capacity: expected a size like/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `warp=${sb.tierDir('nvme')},cap=1GiB`, sb.mnt], /class: expected nvme\|ssd\|hdd\|object/);
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${path.join(sb.root, 'no', 'such', 'parent')},cap=1GiB`, sb.mnt], /parent directory does not exist/);
  const notDir = path.join(sb.root, 'plainfile');
  fs.writeFileSync(notDir, 'x');
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${notDir},cap=1GiB`, sb.mnt], /is not a directory/);
  fs.rmSync(notDir);

  fs.writeFileSync(path.join(sb.mnt, 'occupied'), 'x');
  expectRefusal(t, sb, ['mount', '--live', sb.live, '--state', sb.state, '--tier', tier(), sb.mnt], /is not empty/);
  fs.rmSync(path.join(sb.mnt, 'occupied'));

  const cfg = path.join(sb.root, 'broken.json');
  fs.writeFileSync(cfg, '{ "live": "/x", ');
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json is not valid JSON/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, tiers: [{ name: 'nvme', path: sb.tierDir('nvme'), capacity: '1GiB' }], extentSize: '3MiB' }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /extentSize: expected a power of two/);
  fs.writeFileSync(cfg, JSON.stringify({ live: sb.live, tierz: [] }));
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /config tierz: expected one of/);
  fs.rmSync(cfg);
  expectRefusal(t, sb, ['mount', '--config', cfg, sb.mnt], /broken.json cannot be read: ENOENT/);
  expectRefusal(t, sb, ['frobnicate'], /Unknown argument: frobnicate|Unknown command/, 2);

  t.equal(fs.readFileSync(path.join(sb.live, 'keep.txt'), 'utf8'), 'live data');
});

t.test('bad object-store tiers', async (t) => {
  useS3Credentials();
  const s3 = await startS3Server({ bucket: 'exists' });
  const sb = makeSandbox();
  t.teardown(async () => {
    removeSandbox(sb);
    await s3.close();
  });
  const base = ['mount', '--live', sb.live, '--state', sb.state];
  const cache = sb.tierDir('cache');
  expectRefusal(t, sb, [...base, '--tier', `s3=notaurl,bucket=exists,cache=${cache},cap=1GiB`, sb.mnt], /endpoint: expected an http\(s\) URL/);
  expectRefusal(t, sb, [...base, '--tier', `s3=${s3.endpoint},bucket=Bad_Name,cache=${cache},cap=1GiB`, sb.mnt], /bucket: expected an S3 bucket name/);
  const r = cli([...base, '--tier', `s3=${s3.endpoint},bucket=missing,cache=${cache},cap=1GiB`, sb.mnt]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^shadowfs: tier s3: bucket missing not found at http:\/\/127\.0\.0\.1:\d+\n$/, 'a missing bucket is one line');
  t.notOk(isMounted(sb.mnt));
  await s3.stop();
  const down = cli([...base, '--tier', `s3=${s3.endpoint},bucket=exists,cache=${cache},cap=1GiB`, sb.mnt]);
  t.equal(down.status, 1);
  t.match(down.stderr, /^shadowfs: tier s3: .*\n$/, `an unreachable endpoint is one line: ${down.stderr.trim()}`);
  t.notOk(isMounted(sb.mnt));
});

t.test('--help explains the mount command', async (t) => {
  const r = cli(['mount', '--help']);
  t.equal(r.status, 0);
  t.match(r.stdout, /--tier/);
  t.match(r.stdout, /--daemon/);
  t.match(r.stdout, /Examples:/);
});
