import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Test } from 'tap';
import { ChatError } from '../protocol/errors.ts';
import type { Objects } from './objects.ts';

/**
 * The objects port's contract, run against every adapter (each adapter's test calls it).
 * `open` returns an adapter over an empty namespace; the suite closes it.
 */
export interface ObjectsContractOptions {
  name: string;
  open: () => Promise<Objects>;
}

async function* chunksOf(bytes: Buffer, size = 64 * 1024): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    yield bytes.subarray(i, i + size);
    // hand the loop back, as a network body would
    await new Promise((r) => setImmediate(r));
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

export function runObjectsContract(t: Test, opts: ObjectsContractOptions): void {
  t.test(`objects contract - ${opts.name}`, async (t) => {
    const objects = await opts.open();
    t.teardown(() => objects.close());
    await objects.check();

    t.test('put, head and get give back the bytes and the metadata', async (t) => {
      const bytes = randomBytes(300 * 1024 + 17);
      const meta = { contentType: 'image/png', fileName: 'café ☕ "x".png', extra: { 'uploaded-by': 'alice', attachment: 'a1' } };
      const put = await objects.put('acme:room1/a1', chunksOf(bytes), meta);
      t.match(put, { key: 'acme:room1/a1', size: bytes.length, ...meta });
      const head = await objects.head('acme:room1/a1');
      t.match(head, { key: 'acme:room1/a1', size: bytes.length, contentType: 'image/png', fileName: meta.fileName, extra: meta.extra });
      t.ok(head!.lastModified instanceof Date && Math.abs(head!.lastModified.getTime() - Date.now()) < 60_000, 'lastModified is now');
      const read = await objects.get('acme:room1/a1');
      t.equal(read!.info.size, bytes.length);
      t.ok((await readAll(read!.body)).equals(bytes), 'same bytes');
    });

    t.test('a body of announced size', async (t) => {
      const bytes = randomBytes(200_000);
      const put = await objects.put('r/sized', chunksOf(bytes), { contentType: 'application/pdf' }, { size: bytes.length });
      t.equal(put.size, bytes.length);
      t.ok((await readAll((await objects.get('r/sized'))!.body)).equals(bytes));
    });

    t.test('a range reads only its bytes', async (t) => {
      const bytes = randomBytes(10_000);
      await objects.put('r/range', chunksOf(bytes, 1000), { contentType: 'application/octet-stream' });
      const mid = await objects.get('r/range', { start: 1234, end: 5677 });
      t.ok((await readAll(mid!.body)).equals(bytes.subarray(1234, 5678)), 'middle');
      const last = await objects.get('r/range', { start: 9999, end: 9999 });
      t.same([...(await readAll(last!.body))], [bytes[9999]], 'last byte');
      t.equal(mid!.info.size, 10_000, 'info is of the whole object');
    });

    t.test('an empty object', async (t) => {
      const put = await objects.put('r/empty', chunksOf(Buffer.alloc(0)), { contentType: 'text/plain' });
      t.equal(put.size, 0);
      t.equal((await readAll((await objects.get('r/empty'))!.body)).length, 0);
    });

    t.test('missing keys read as undefined', async (t) => {
      t.equal(await objects.head('r/nothing'), undefined);
      t.equal(await objects.get('r/nothing'), undefined);
    });

    t.test('a put replaces the object', async (t) => {
      await objects.put('r/twice', chunksOf(Buffer.from('first')), { contentType: 'text/plain', fileName: 'a.txt' });
      await objects.put('r/twice', chunksOf(Buffer.from('second!')), { contentType: 'text/csv' });
      const read = await objects.get('r/twice');
      t.equal((await readAll(read!.body)).toString(), 'second!');
      t.equal(read!.info.contentType, 'text/csv');
      t.equal(read!.info.fileName, undefined, 'metadata is replaced too');
    });

    t.test('a body that fails stores nothing and keeps the earlier object', async (t) => {
      await objects.put('r/kept', chunksOf(Buffer.from('old')), { contentType: 'text/plain' });
      const boom = new ChatError('too_large', 'body over the limit');
      async function* failing() {
        yield Buffer.alloc(100_000, 1);
        await new Promise((r) => setImmediate(r));
        throw boom;
      }
      await t.rejects(objects.put('r/kept', failing(), { contentType: 'text/plain' }), boom, 'the body error comes back');
      t.equal((await readAll((await objects.get('r/kept'))!.body)).toString(), 'old');
      await t.rejects(objects.put('r/never', failing(), { contentType: 'text/plain' }), boom);
      t.equal(await objects.head('r/never'), undefined);
    });

    t.test('bad keys and metadata are refused', async (t) => {
      for (const key of ['', '../x', 'a/../b', 'a//b', '/a', 'a/', 'a b', 'a/./b', 'x'.repeat(600)]) {
        await t.rejects(objects.head(key), { code: 'bad_request' }, `head ${JSON.stringify(key.slice(0, 20))}`);
        await t.rejects(objects.put(key, chunksOf(Buffer.from('x')), { contentType: 'text/plain' }), { code: 'bad_request' }, `put ${JSON.stringify(key.slice(0, 20))}`);
      }
      await t.rejects(objects.put('r/meta', chunksOf(Buffer.from('x')), { contentType: 'text/plain', extra: { 'Bad Key': 'v' } }), { code: 'bad_request' });
    });

    t.test('commit moves an object under new metadata', async (t) => {
      const bytes = randomBytes(5000);
      await objects.put('pending/p1', chunksOf(bytes), { contentType: 'application/octet-stream' });
      const done = await objects.commit('pending/p1', 'r/p1', { contentType: 'image/gif', fileName: 'anim.gif', extra: { 'uploaded-by': 'bob' } });
      t.match(done, { key: 'r/p1', size: 5000, contentType: 'image/gif', fileName: 'anim.gif' });
      t.equal(await objects.head('pending/p1'), undefined, 'the source is gone');
      const read = await objects.get('r/p1');
      t.match(read!.info, { contentType: 'image/gif', fileName: 'anim.gif', extra: { 'uploaded-by': 'bob' } });
      t.ok((await readAll(read!.body)).equals(bytes));
      await t.rejects(objects.commit('pending/none', 'r/none', { contentType: 'text/plain' }), { code: 'not_found' });
    });

    t.test('delete removes, and is idempotent', async (t) => {
      await objects.put('r/del', chunksOf(Buffer.from('bye')), { contentType: 'text/plain' });
      await objects.delete('r/del');
      t.equal(await objects.head('r/del'), undefined);
      t.equal(await objects.get('r/del'), undefined);
      await objects.delete('r/del');
    });

    if (objects.direct) {
      const direct = objects.direct;
      t.test('direct: a browser-style PUT to a presigned URL, then commit and a presigned GET', async (t) => {
        const bytes = randomBytes(70_000);
        const put = await direct.presignPut('pending/d1', { expiresInSec: 60, contentLength: bytes.length });
        t.equal(put.method, 'PUT');
        t.ok(put.expiresAt.getTime() > Date.now());
        // what a browser does: a plain PUT of the file, with only the headers it was told to send
        const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: bytes });
        t.equal(res.status, 200, `PUT answered ${res.status}: ${res.ok ? '' : await res.text()}`);
        t.equal((await objects.head('pending/d1'))?.size, bytes.length, 'the object is there');
        await objects.commit('pending/d1', 'r/d1', { contentType: 'image/png', fileName: 'd1.png' });
        const get = await direct.presignGet('r/d1', { expiresInSec: 60, contentType: 'image/png', contentDisposition: 'inline; filename="d1.png"' });
        const down = await fetch(get.url, { headers: get.headers });
        t.equal(down.status, 200);
        t.equal(down.headers.get('content-type'), 'image/png');
        t.equal(down.headers.get('content-disposition'), 'inline; filename="d1.png"');
        t.ok(Buffer.from(await down.arrayBuffer()).equals(bytes), 'same bytes');
      });

      t.test('direct: a PUT of another length than signed is refused', async (t) => {
        const put = await direct.presignPut('pending/d2', { expiresInSec: 60, contentLength: 10 });
        const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: Buffer.alloc(20) }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
        t.ok(res instanceof Error || !res.ok, 'refused');
        if (!(res instanceof Error)) await res.arrayBuffer();
        t.equal(await objects.head('pending/d2'), undefined, 'nothing stored');
      });
    }
  });
}
