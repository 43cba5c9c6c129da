import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import {
  FAKE_ACCESS_TOKEN, FAKE_BOT_TOKEN, FAKE_PHONE_NUMBER_ID, signMeta, startFakePlatforms, telegramMessageUpdate, whatsappMessageWebhook, type PlatformSend,
} from './support/fake-platforms.ts';
import { PDF_HEAD, pngOf } from './support/attachment-files.ts';
import { restClient, eventually } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Outbound media end to end: `chat all` behind a proxy that is its public address (PUBLIC_URL),
 * as a platform reaches it. An agent uploads files to a WhatsApp and a Telegram room and posts
 * them; the fake platform gets each platform's media send, whose URL serves the file's bytes to
 * anyone (no token: the platform has none) until it expires, and nothing else.
 */
const APP_SECRET = 'meta-app-secret-media-e2e';
const TG_SECRET = 'tg_secret-media-e2e';

/** The public side: forwards every request to the chat process once it listens. */
let target = 0;
const proxy = createServer((req, res) => {
  const upstream = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  upstream.on('error', () => res.writeHead(502).end());
  req.pipe(upstream);
});
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
const publicUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
t.teardown(() => new Promise<void>((r) => { proxy.closeAllConnections(); proxy.close(() => r()); }));

const fake = await startFakePlatforms();
t.teardown(() => fake.close());
const srv = await startChatProcess({
  env: {
    NODE_ID: '', NATS_URL: '', REDIS_URL: '', BUS: 'memory', STORE: 'sqlite', PUBLIC_URL: publicUrl, ATTACHMENT_LINK_TTL: '600',
    WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_ACCESS_TOKEN: FAKE_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID: FAKE_PHONE_NUMBER_ID, WHATSAPP_API_BASE: fake.base,
    TELEGRAM_BOT_TOKEN: FAKE_BOT_TOKEN, TELEGRAM_SECRET_TOKEN: TG_SECRET, TELEGRAM_API_BASE: fake.base,
    CHANNELS_RETRY_INITIAL_MS: '20', CHANNELS_RETRY_MAX_MS: '50',
  },
});
target = srv.port;
t.teardown(async () => {
  await srv.kill();
  removeDir(srv.dataDir);
});

async function uploadAs(token: string, roomId: string, bytes: Buffer, fileName: string) {
  const res = await fetch(`${srv.http}/v1/chat/rooms/${roomId}/attachments?fileName=${encodeURIComponent(fileName)}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: bytes,
  });
  const json = await res.json() as any;
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

/** What the platform does with a media URL: a plain GET, no token. */
async function fetchAsPlatform(url: string) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('channels media - an agent\'s image in a WhatsApp room goes out as type image with a link that serves its bytes', async (t) => {
  const body = whatsappMessageWebhook('15550102030', 'wamid.MEDIA_IN1', { type: 'text', text: { body: 'Can you send a photo?' } });
  const hook = await fetch(`${srv.http}/v1/channels/whatsapp/webhook`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMeta(APP_SECRET, body) } });
  t.equal(hook.status, 200);
  const token = await devToken('agent');
  const agent = restClient(`${srv.http}/v1/chat`, token);
  t.equal((await agent('POST', '/rooms/wa_15550102030/join')).status, 200);
  const png = pngOf(3000);
  const image = await uploadAs(token, 'wa_15550102030', png, 'parcel.png');
  const posted = await agent('POST', '/rooms/wa_15550102030/messages', { content: 'Here it is', type: 'image', attachments: [image] });
  t.equal(posted.status, 201, JSON.stringify(posted.body));

  const send = await eventually(async () => fake.sends.find((s) => s.platform === 'whatsapp' && s.body?.type === 'image'), 10_000);
  t.match(send.body, { to: '15550102030', type: 'image', image: { caption: 'Here it is' }, biz_opaque_callback_data: posted.body.data.message.messageId });
  const link: string = send.body.image.link;
  t.ok(link.startsWith(`${publicUrl}/v1/chat/links/`), `a link under PUBLIC_URL: ${link}`);
  const got = await fetchAsPlatform(link);
  t.equal(got.status, 200);
  t.equal(got.type, 'image/png');
  t.ok(got.bytes.equals(png), 'the uploaded bytes, fetched without a token');
  const tampered = new URL(link);
  tampered.searchParams.set('expires', String(Number(tampered.searchParams.get('expires')) + 1));
  t.equal((await fetchAsPlatform(tampered.href)).status, 403, 'a changed link opens nothing');

  await sleep(500);
  t.equal(fake.sends.filter((s) => s.platform === 'whatsapp' && s.body?.biz_opaque_callback_data === posted.body.data.message.messageId).length, 1, 'one send: the text is its caption');
});

t.test('channels media - a Telegram reply with a photo and a PDF: sendPhoto with the caption, then sendDocument, each once', async (t) => {
  const update = telegramMessageUpdate(9001, 5150, 1, { text: 'my invoice please' });
  const hook = await fetch(`${srv.http}/v1/channels/telegram/webhook`, { method: 'POST', body: update, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET } });
  t.equal(hook.status, 200);
  const token = await devToken('agent');
  const agent = restClient(`${srv.http}/v1/chat`, token);
  t.equal((await agent('POST', '/rooms/tg_5150/join')).status, 200);
  const png = pngOf(1500);
  const photo = await uploadAs(token, 'tg_5150', png, 'receipt.png');
  const pdf = await uploadAs(token, 'tg_5150', PDF_HEAD, 'invoice.pdf');
  const posted = await agent('POST', '/rooms/tg_5150/messages', { content: 'Your receipt and invoice', type: 'file', attachments: [photo, pdf] });
  t.equal(posted.status, 201, JSON.stringify(posted.body));

  const tg = (): PlatformSend[] => fake.sends.filter((s) => s.platform === 'telegram' && s.body?.chat_id === '5150');
  await eventually(async () => tg().length >= 2, 10_000);
  await sleep(500);
  t.same(tg().map((s) => s.path.split('/').pop()), ['sendPhoto', 'sendDocument'], 'in the files\' order, each once');
  t.equal(tg()[0]!.body.caption, 'Your receipt and invoice');
  t.equal(tg()[1]!.body.caption, undefined, 'the caption goes with the first only');
  const gotPhoto = await fetchAsPlatform(tg()[0]!.body.photo);
  t.equal(gotPhoto.status, 200);
  t.ok(gotPhoto.bytes.equals(png));
  const gotPdf = await fetchAsPlatform(tg()[1]!.body.document);
  t.equal(gotPdf.status, 200);
  t.equal(gotPdf.type, 'application/pdf');
  t.ok(gotPdf.bytes.equals(PDF_HEAD));
  t.equal((await fetchAsPlatform(tg()[1]!.body.document.replace(pdf.id, photo.id))).status, 403, 'one file\'s link does not open another');
});
