import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { removeDir, startChatProcess } from './support/chat-process.ts';
import { TestClient } from './support/ws-client.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { pngOf } from './support/attachment-files.ts';
import { s3proxyJar, startS3Proxy } from './support/s3proxy-server.ts';

/**
 * Attachments as the embedded server serves them (`chat all`, a real process, default config: disk
 * storage under DATA_DIR): upload over REST, a `send_message` frame that carries the attachment,
 * the `new_message` every member receives, and the download.
 */
const srv = await startChatProcess({ env: { MAX_FILE_SIZE: String(2 * 1024 * 1024) } });
const clients: TestClient[] = [];
t.teardown(async () => {
  for (const c of clients) c.close();
  await srv.stop();
  removeDir(srv.dataDir);
});

t.test('attachments e2e - upload, send_message with it, new_message to members, download', async (t) => {
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((u) => devToken(u)));
  const rest = restClient(srv.http, alice);
  const roomId = (await rest('POST', '/v1/chat/rooms', { name: 'pics', type: 'private', members: ['bob'] })).body.data.roomId as string;

  const bytes = pngOf(700_000);
  const up = await fetch(`${srv.http}/v1/chat/rooms/${roomId}/attachments?fileName=${encodeURIComponent('Ünïcode cat.png')}`, {
    method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' }, body: bytes,
  });
  const attachment = ((await up.json()) as any).data;
  t.equal(up.status, 201);
  t.match(attachment, { type: 'image', mimeType: 'image/png', fileSize: bytes.length, fileName: 'Ünïcode cat.png' });
  t.ok(existsSync(join(srv.dataDir, 'attachments', 'data', roomId, attachment.id)), 'stored on disk under DATA_DIR/attachments');

  const sender = await TestClient.connect(`${srv.ws}/chat`, { token: alice, format: 'json' });
  const reader = await TestClient.connect(`${srv.ws}/chat`, { token: bob, format: 'msgpack' });
  clients.push(sender, reader);
  for (const c of [sender, reader]) {
    await c.next((f) => f.type === 'welcome');
    t.equal((await c.request({ type: 'join_room', roomId })).type, 'ack');
  }
  const reply = await sender.request({ type: 'send_message', roomId, content: 'the cat', messageType: 'image', attachments: [attachment] });
  t.equal(reply.type, 'ack', JSON.stringify(reply));
  const seen = await reader.next((f) => f.type === 'new_message' && f.message.messageId === reply.messageId);
  t.same(seen.message.attachments, [attachment], 'the frame carries the attachment to the other member');

  const got = await fetch(`${srv.http}${seen.message.attachments[0].url}`, { headers: { authorization: `Bearer ${bob}` } });
  t.equal(got.status, 200);
  t.equal(got.headers.get('content-type'), 'image/png');
  t.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), 'bob downloads the bytes alice uploaded');

  const part = await fetch(`${srv.http}${attachment.url}`, { headers: { authorization: `Bearer ${bob}`, range: 'bytes=0-7' } });
  t.equal(part.status, 206);
  t.same([...Buffer.from(await part.arrayBuffer())], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the PNG signature');

  const stranger = await fetch(`${srv.http}${attachment.url}`, { headers: { authorization: `Bearer ${carol}` } });
  t.equal(stranger.status, 404, 'a non-member: no such room');
  await stranger.arrayBuffer();
  const foreign = await sender.request({ type: 'send_message', roomId, content: 'x', attachments: [{ ...attachment, url: attachment.url.replace(roomId, 'elsewhere') }] });
  t.match(foreign, { type: 'error', code: 'bad_request' }, 'a frame may not point at another room\'s file');
});

t.test('attachments e2e - chat all with OBJECTS=s3 stores in the bucket and redirects downloads', async (t) => {
  const found = await s3proxyJar();
  if ('skip' in found) {
    t.comment(found.skip);
    return;
  }
  const s3 = await startS3Proxy(found.jar);
  const s3srv = await startChatProcess({ env: s3.env });
  t.teardown(async () => {
    await s3srv.stop();
    removeDir(s3srv.dataDir);
    await s3.stop();
  });
  const alice = await devToken('alice');
  const roomId = (await restClient(s3srv.http, alice)('POST', '/v1/chat/rooms', { name: 'bucket', type: 'private' })).body.data.roomId as string;
  const bytes = pngOf(100_000);
  const up = await fetch(`${s3srv.http}/v1/chat/rooms/${roomId}/attachments?fileName=b.png`, {
    method: 'POST', headers: { authorization: `Bearer ${alice}` }, body: bytes,
  });
  const body = (await up.json()) as any;
  t.equal(up.status, 201, JSON.stringify(body.error));
  const attachment = body.data;
  t.notOk(existsSync(join(s3srv.dataDir, 'attachments')), 'nothing on the process\'s disk');
  const res = await fetch(`${s3srv.http}${attachment.url}`, { headers: { authorization: `Bearer ${alice}` }, redirect: 'manual' });
  t.equal(res.status, 302);
  t.equal(new URL(res.headers.get('location')!).origin, s3.endpoint, 'to the bucket');
  const file = await fetch(res.headers.get('location')!);
  t.ok(Buffer.from(await file.arrayBuffer()).equals(bytes), 'the bucket holds the bytes');
});
