import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type KV } from 'nats';
import { pino } from 'pino';
import { startNatsServer, type NatsServer } from '../../test/support/nats-server.ts';
import { captureLog, LEVEL } from '../../test/support/log-capture.ts';
import { startChatProcess, removeDir } from '../../test/support/chat-process.ts';
import { eventually } from '../../test/support/rest.ts';
import { loadConfig, type Config } from '../config/index.ts';
import { ChatError } from '../protocol/errors.ts';
import { EXIT_NODE_ID_LOST } from '../runtime/shutdown.ts';
import { claimNatsNodeId, claimNodeId, LeasedSnowflake, type NodeIdConfig, type NodeIdLease, type NatsNodeIdLeaseConfig } from './index.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TTL_MS = 1500;
const quiet = pino({ level: 'silent' });

const server = await startNatsServer();
t.teardown(() => server.destroy());
const admin = await connect({ servers: server.url, name: 'node-id lease test admin' });
t.teardown(() => admin.close());

/** Only what claimNodeId takes of the config. */
function nodeIdSections(config: Config): NodeIdConfig {
  return { nodeId: config.nodeId, bus: config.bus };
}

let buckets = 0;
/** A fresh bucket per test, so tests never see each other's ids. */
function bucketCfg(ttlMs = TTL_MS): NatsNodeIdLeaseConfig {
  return { servers: [server.url], bucket: `ids_test_${++buckets}`, ttlMs };
}

async function claim(t: Test, cfg: NatsNodeIdLeaseConfig, log = quiet): Promise<NodeIdLease> {
  const lease = await claimNatsNodeId(cfg, log, { reconnectWaitMs: 100 });
  t.teardown(() => lease.release());
  return lease;
}

function adminKv(cfg: NatsNodeIdLeaseConfig): Promise<KV> {
  return admin.jetstream().views.kv(cfg.bucket!, { bindOnly: true });
}

/** Resolves with the error once the lease is lost, or rejects after `ms`. */
function lostWithin(lease: NodeIdLease, ms: number): Promise<ChatError> {
  return Promise.race([
    lease.lost,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`lease ${lease.nodeId} still held after ${ms} ms`)), ms)),
  ]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('node id lease - two holders get different ids, and the ids they make carry them', async (t) => {
  const cfg = bucketCfg();
  const [a, b] = await Promise.all([claim(t, cfg), claim(t, cfg)]);
  t.same([a.nodeId, b.nodeId].sort(), [0, 1], 'concurrent claims take the two lowest ids, one each');
  t.equal(a.kind, 'nats-kv');
  const kv = await adminKv(cfg);
  const holders = await Promise.all(['0', '1'].map(async (k) => JSON.parse((await kv.get(k))!.string()) as { token: string; pid: number }));
  t.not(holders[0]!.token, holders[1]!.token, 'each key names its own holder');
  t.equal(holders[0]!.pid, process.pid);

  const ids = new LeasedSnowflake(a);
  const id = BigInt(ids.next());
  t.equal(Number((id >> 12n) & 1023n), a.nodeId, 'the snowflake carries the leased node id');

  // renewals keep the lease across several TTLs
  await sleep(TTL_MS * 2.5);
  t.ok(a.valid() && b.valid(), 'renewed leases stay valid past the TTL');
  t.equal((await claim(t, cfg)).nodeId, 2, 'a third holder gets the next free id');
});

t.test('node id lease - a released id is free again at once', async (t) => {
  const cfg = bucketCfg(60_000);
  const a = await claim(t, cfg);
  const b = await claim(t, cfg);
  t.equal(a.nodeId, 0);
  await a.release();
  t.notOk(a.valid(), 'a released lease is no longer valid');
  t.throws(() => new LeasedSnowflake(a).next(), { code: 'unavailable' }, 'and makes no ids');
  const c = await claim(t, cfg);
  t.equal(c.nodeId, 0, 'the lowest free id is the released one (TTL 60 s, so not by expiry)');
  t.ok(b.valid());
});

t.test('node id lease - the id of a holder killed with -9 is free again after the TTL', async (t) => {
  const cfg = bucketCfg();
  // a real process claims id 0 and dies without releasing it
  const script = `
    import { claimNatsNodeId } from './shared/ids/index.ts';
    import { pino } from 'pino';
    const lease = await claimNatsNodeId(${JSON.stringify(cfg)}, pino({ level: 'silent' }));
    console.log('claimed ' + lease.nodeId);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  const line = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error('the child did not claim in time')), 20_000);
    createInterface({ input: child.stdout! }).once('line', (l) => { clearTimeout(timer); res(l); });
  });
  t.equal(line, 'claimed 0');
  child.kill('SIGKILL');
  const killedAt = Date.now();

  const b = await claim(t, cfg);
  t.equal(b.nodeId, 1, 'while the dead holder\'s lease runs, its id stays taken');
  const c = await eventually(async () => {
    const lease = await claimNatsNodeId(cfg, quiet);
    if (lease.nodeId === 0) return lease;
    await lease.release();
    return undefined;
  }, TTL_MS * 4, 100);
  t.teardown(() => c.release());
  const waited = Date.now() - killedAt;
  t.ok(waited >= TTL_MS * 0.5, `id 0 came back only after the lease expired (${waited} ms)`);
});

t.test('node id lease - a holder whose key was deleted notices and stops', async (t) => {
  const cfg = bucketCfg();
  const a = await claim(t, cfg);
  const ids = new LeasedSnowflake(a);
  ids.next();
  await (await adminKv(cfg)).delete(String(a.nodeId));
  const err = await lostWithin(a, TTL_MS);
  t.equal(err.code, 'unavailable');
  t.match(err.message, /no longer ours: the key was deleted/);
  t.notOk(a.valid());
  t.throws(() => ids.next(), { code: 'unavailable', message: /no longer leased/ }, 'no id is made after the loss');
  const b = await claim(t, cfg);
  t.equal(b.nodeId, 0, 'the deleted id can be claimed by a new holder');
  await sleep(TTL_MS);
  t.ok(b.valid(), 'the old holder never touches the new holder\'s key');
});

t.test('node id lease - a holder whose key another process took notices, naming the taker', async (t) => {
  const cfg = bucketCfg();
  const { log, matching } = captureLog();
  const a = await claim(t, cfg, log);
  await (await adminKv(cfg)).put(String(a.nodeId), JSON.stringify({ token: 'someone-else', host: 'elsewhere', pid: 4242 }));
  const err = await lostWithin(a, TTL_MS);
  t.match(err.message, /belongs to elsewhere pid 4242/);
  t.equal(matching(LEVEL.error, /node id lease: lost/).length, 1, 'the loss is logged once, as an error');
});

t.test('node id lease - a renewal that landed without an answer is recognised as ours', async (t) => {
  const cfg = bucketCfg();
  const a = await claim(t, cfg);
  const kv = await adminKv(cfg);
  // what a renewal whose reply was lost leaves behind: our own value at a newer revision
  const entry = (await kv.get(String(a.nodeId)))!;
  await kv.put(String(a.nodeId), entry.value);
  await sleep(TTL_MS * 1.5);
  t.ok(a.valid(), 'the lease is kept');
  t.ok((await kv.get(String(a.nodeId)))!.revision > entry.revision + 1, 'and renewed since');
});

t.test('node id lease - NATS unreachable for longer than the TTL loses the lease; shorter does not', async (t) => {
  const own = await startNatsServer();
  t.teardown(() => own.destroy());
  const cfg: NatsNodeIdLeaseConfig = { servers: [own.url], bucket: 'ids_outage', ttlMs: 3000 };
  const a = await claim(t, cfg);

  await own.stop();
  await sleep(500);
  t.ok(a.valid(), 'a short outage keeps the lease (still within its TTL)');
  await own.restart();
  await sleep(1500);
  t.ok(a.valid(), 'and renewals resume after it');

  await own.stop();
  const stoppedAt = Date.now();
  const err = await lostWithin(a, 5000);
  const after = Date.now() - stoppedAt;
  t.match(err.message, /could not be renewed for 3000 ms/);
  t.ok(after < 3000, `the lease was given up before another process could claim the id (${after} ms)`);
  t.notOk(a.valid());
});

t.test('node id lease - NODE_ID overrides, and the in-process bus uses 0 without NATS', async (t) => {
  const fixed = await claimNodeId(nodeIdSections(loadConfig({ NATS_URL: 'nats://127.0.0.1:1', NODE_ID: '7' })), quiet);
  t.equal(fixed.kind, 'fixed');
  t.equal(fixed.nodeId, 7, 'NODE_ID wins even on the NATS bus, and NATS is not asked');
  t.ok(fixed.valid());
  const embedded = await claimNodeId(nodeIdSections(loadConfig({})), quiet);
  t.same([embedded.kind, embedded.nodeId], ['fixed', 0]);
  const leased = await claimNodeId(nodeIdSections(loadConfig({ NATS_URL: server.url })), quiet);
  t.teardown(() => leased.release());
  t.equal(leased.kind, 'nats-kv', 'the NATS bus leases its id');
});

t.test('node id lease - a tier process whose lease is taken exits with a fatal log', async (t) => {
  const own = await startNatsServer();
  t.teardown(() => own.destroy());
  const proc = await startChatProcess({ command: 'persister', env: { NATS_URL: own.url } });
  t.teardown(async () => { await proc.kill(); removeDir(proc.dataDir); });
  const nc = await connect({ servers: own.url });
  t.teardown(() => nc.close());
  const kv = await nc.jetstream().views.kv('chat_node_ids', { bindOnly: true });
  const entry = await kv.get('0');
  t.equal(JSON.parse(entry!.string()).pid, proc.child.pid, 'the process leased id 0');
  await kv.delete('0');
  // renewals run every TTL/3 (10 s)
  const code = await Promise.race([proc.exited, sleep(15_000).then(() => 'still running')]);
  t.equal(code, EXIT_NODE_ID_LOST, 'it exits with EX_TEMPFAIL');
  t.ok(proc.output.some((l) => /"level":60.*node id lease lost/.test(l)), 'after a fatal log line saying why');
});
