/** The control socket: root-only, validated requests, one mount's socket never answers for another. */
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { socketFile } from '../../src/control/runtime-files';
import type { StatusReport } from '../../src/control/protocol';

function raw(sock: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let out = '';
    c.on('connect', () => c.write(line + '\n'));
    c.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        c.end();
        resolve(out.trim());
      }
    });
    c.on('error', reject);
  });
}

t.test('control socket', async (t) => {
  const a = makeSandbox();
  const b = makeSandbox();
  const va = new MountedVolume(a);
  const vb = new MountedVolume(b);
  t.teardown(async () => {
    await va.cleanup();
    await vb.cleanup();
    removeSandbox(a);
    removeSandbox(b);
  });
  await va.start();
  await vb.start();
  const sock = socketFile(a.mnt);
  t.equal(fs.statSync(sock).mode & 0o777, 0o600, 'the socket is mode 0600');
  t.equal(fs.statSync(sock).uid, 0, 'owned by root');

  fs.chmodSync(a.root, 0o755);
  const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'status', a.mnt], { encoding: 'utf8' });
  t.equal(asNobody.status, 1, 'a non-root user is refused');
  t.match(asNobody.stderr, /permission denied/);

  t.match(await raw(sock, '{"command":"launch-missiles"}'), /"ok":false,"error":"unknown command \\"launch-missiles\\"/);
  t.match(await raw(sock, 'not json'), /malformed request/);
  t.match(await raw(sock, '{"command":"which-tier","path":"/etc/passwd"}'), /outside the volume|no such file/);
  t.match(await raw(sock, '{"command":"which-tier","path":"../../etc/passwd"}'), /outside the volume/);

  const sa = JSON.parse(cli(['status', '--json', a.mnt]).stdout) as StatusReport;
  const sbr = JSON.parse(cli(['status', '--json', b.mnt]).stdout) as StatusReport;
  t.equal(sa.livePath, a.live, 'each mount answers for itself');
  t.equal(sbr.livePath, b.live);
  t.not(sa.pid, sbr.pid);
  t.equal(path.dirname(socketFile(a.mnt)), path.dirname(socketFile(b.mnt)));
  t.not(socketFile(a.mnt), socketFile(b.mnt));
  t.equal(await va.stop(), 0);
  t.notOk(fs.existsSync(sock), 'the socket is removed at unmount');
  const gone = cli(['status', a.mnt]);
  t.equal(gone.status, 1);
  t.match(gone.stderr, /is not a running shadowfs mount/);
  t.equal(await vb.stop(), 0);
});
