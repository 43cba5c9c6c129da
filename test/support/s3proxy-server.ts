import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A real S3-compatible server for tests: S3Proxy (org.gaul:s3proxy, the jar-with-dependencies from
 * Maven Central, see deploy/s3proxy/) with its filesystem backend, on an ephemeral loopback port,
 * its objects in a temporary directory.
 */
export interface S3ProxyServer {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The env a chat process needs to store attachments there. */
  env: Record<string, string>;
  /** Stops the server and removes its files. Safe to call twice. */
  stop(): Promise<void>;
}

const SCRIPT = new URL('../../deploy/s3proxy/s3proxy.sh', import.meta.url).pathname;
const START_TIMEOUT_MS = 60_000;
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * The jar's path, downloaded once by `deploy/s3proxy/s3proxy.sh jar` (Maven), or the reason there
 * is none (no Maven, no network): the caller skips with it.
 */
export async function s3proxyJar(): Promise<{ jar: string } | { skip: string }> {
  if (process.env.S3PROXY_JAR) return { jar: process.env.S3PROXY_JAR };
  try {
    const { stdout } = await promisify(execFile)('bash', [SCRIPT, 'jar'], { timeout: 300_000 });
    return { jar: stdout.trim().split('\n').pop()! };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { skip: `S3Proxy is not available (deploy/s3proxy/s3proxy.sh jar failed: ${(e.stderr || e.message).trim().split('\n').pop()})` };
  }
}

export async function startS3Proxy(jar: string, opts: { bucket?: string } = {}): Promise<S3ProxyServer> {
  const dir = mkdtempSync(join(tmpdir(), 'chat-s3proxy-'));
  const bucket = opts.bucket ?? 'chat-attachments-test';
  const accessKeyId = 'test-identity';
  const secretAccessKey = 'test-credential-0123456789';
  // the filesystem backend's buckets are the directories under its base
  mkdirSync(join(dir, 'data', bucket), { recursive: true });
  const conf = join(dir, 's3proxy.conf');
  writeFileSync(conf, [
    's3proxy.endpoint=http://127.0.0.1:0',
    's3proxy.authorization=aws-v2-or-v4',
    `s3proxy.identity=${accessKeyId}`,
    `s3proxy.credential=${secretAccessKey}`,
    'jclouds.provider=filesystem',
    `jclouds.filesystem.basedir=${join(dir, 'data')}`,
    '',
  ].join('\n'));
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const child = spawn(java, ['-Xmx256m', '-jar', jar, '--properties', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`S3Proxy did not start within ${START_TIMEOUT_MS} ms:\n${output.slice(-2000)}`)), START_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const read = (d: Buffer) => {
      output += d.toString();
      // Jetty names the port it bound: "Started ServerConnector@...{HTTP/1.1, (http/1.1)}{127.0.0.1:40123}"
      const m = /Started ServerConnector@\S+\{HTTP\/1\.1[^}]*\}\{127\.0\.0\.1:(\d+)\}/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => fail(new Error(`S3Proxy exited with ${code} before it listened:\n${output.slice(-2000)}`)));
    child.once('error', fail);
  });
  child.stdout!.resume();
  child.stderr!.resume();
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    endpoint, bucket, accessKeyId, secretAccessKey,
    env: {
      OBJECTS: 's3', S3_ENDPOINT: endpoint, S3_BUCKET_ATTACHMENTS: bucket, S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey, S3_FORCE_PATH_STYLE: 'true',
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        live.delete(child);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
