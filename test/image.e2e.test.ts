import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DEPLOY, ROOT, hasTool } from './support/deploy-files.ts';

/**
 * The container image: deploy/image/smoke.sh builds it from the Dockerfile as it is (on the base
 * image, or the local stand-in deploy/image/build-base.sh makes when no registry is reachable)
 * and tries it: /health, the HEALTHCHECK, `chat token`, the page, REST, a WebSocket send and
 * receive, the history, a clean exit on SIGTERM.
 *
 * Building takes minutes (npm ci and better-sqlite3's compile inside the build), so the normal
 * suite does not: it runs with CHAT_TEST_IMAGE=1, and says otherwise what it would need.
 */
const wanted = process.env['CHAT_TEST_IMAGE'] === '1';
const podman = hasTool('podman');
const base = podman && spawnSync('bash', ['-c', `source ${join(DEPLOY, 'image/podman.sh')} && $PODMAN image exists "$(base_image ${join(ROOT, 'Dockerfile')})"`]).status === 0;

const skip = !wanted
  ? `set CHAT_TEST_IMAGE=1 to build and try the image (podman ${podman ? 'found' : 'not found'}, base image ${base ? 'present' : 'absent: deploy/image/build-base.sh'})`
  : !podman ? 'podman not found (apt-get install podman runc)'
    : !base ? 'the base image is absent: run deploy/image/build-base.sh first'
      : false;

// the file's own limit (.taprc: 120 s) would stop a build long before it ends
if (!skip) t.setTimeout(45 * 60_000);

t.test('image - smoke.sh builds the image and a client talks to the container', { skip, timeout: 45 * 60_000 }, async (t) => {
  const child = spawn('bash', [join(DEPLOY, 'image/smoke.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n')));
  child.stderr!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n')));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const said = lines.filter((l) => l.startsWith('smoke:'));
  for (const l of said) t.comment(l);
  t.equal(code, 0, code === 0 ? 'smoke.sh passed' : lines.slice(-40).join('\n'));
  for (const step of ['/health answers', 'HEALTHCHECK passes', 'serves the built web page', 'over the WebSocket', 'in the REST history', 'stopped cleanly']) {
    t.ok(said.some((l) => l.includes(step)), `smoke: ${step}`);
  }
});
