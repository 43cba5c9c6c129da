import { existsSync } from 'node:fs';
import t from 'tap';
import webpush from 'web-push';
import { chromium } from 'playwright-core';
import { startChatProcess, removeDir } from './support/chat-process.ts';
import { startPushService } from './support/push-service.ts';
import { eventually, restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * The web page's Web Push opt-in in headless Chromium against `chat all`: nothing is asked or
 * registered before the user clicks; the click asks permission, registers the service worker
 * (/sw.js) and stores the subscription; once the page is closed (offline), a mention reaches the
 * local push service, whose VAPID check and aes128gcm decryption pass. Headless Chromium has no
 * push service of its own, so PushManager.subscribe is replaced to answer with a subscription at
 * the local one (keys made by the test, as a browser makes them); the rest is the real page.
 */
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

if (!existsSync(CHROMIUM) && process.env['CI'] !== 'true') {
  t.test('web push opt-in - in a real browser', { skip: `no Chromium at ${CHROMIUM}` }, () => {});
} else {
  t.test('web push opt-in - permission only after the click; the page subscribes through its service worker; an offline mention is pushed', async (t) => {
    const vapid = webpush.generateVAPIDKeys();
    const push = await startPushService(vapid.publicKey);
    t.teardown(() => push.close());
    const srv = await startChatProcess({
      env: {
        NOTIFY_ALLOW_NETWORKS: '127.0.0.0/8', NOTIFY_COLLAPSE_MS: '300',
        VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: 'mailto:ops@example.com',
      },
    });
    t.teardown(async () => {
      await srv.kill();
      removeDir(srv.dataDir);
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    t.teardown(() => browser.close());

    const sub = push.subscribe('bob-browser');
    const context = await browser.newContext();
    // a string: the browser's globals are not in this file's types
    await context.addInitScript({
      content: `(() => {
        const fake = ${JSON.stringify(sub)};
        window.__asks = 0;
        const ask = Notification.requestPermission.bind(Notification);
        Notification.requestPermission = async () => { window.__asks++; return ask(); };
        let current = null;
        PushManager.prototype.getSubscription = async () => current;
        PushManager.prototype.subscribe = async (options) => {
          window.__serverKey = [...new Uint8Array(options.applicationServerKey)];
          current = {
            endpoint: fake.endpoint,
            toJSON: () => ({ endpoint: fake.endpoint, expirationTime: null, keys: fake.keys }),
            unsubscribe: async () => { current = null; return true; },
          };
          return current;
        };
      })();`,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.http}/`);
    await page.locator('input[name=name]').fill('bob');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('connection').filter({ hasText: 'connected' }).waitFor();

    const toggle = page.getByTestId('push-toggle');
    await toggle.waitFor();
    t.equal(await toggle.getAttribute('data-state'), 'off');
    t.equal(await page.evaluate('window.__asks'), 0, 'no permission asked on load');
    t.equal(await page.evaluate('navigator.serviceWorker.getRegistrations().then((r) => r.length)'), 0, 'no service worker before the opt-in');

    await context.grantPermissions(['notifications'], { origin: srv.http });
    await toggle.click();
    await page.locator('[data-testid=push-toggle][data-state=on]').waitFor({ timeout: 10_000 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; state ${await toggle.getAttribute('data-state')}, error: ${await page.getByTestId('push-error').textContent().catch(() => '')}`);
    });
    t.equal(await page.evaluate('window.__asks'), 1, 'asked once, on the click');
    t.match(await page.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => r && r.active && r.active.scriptURL)"), /\/sw\.js$/, 'the service worker is registered');
    const serverKey = await page.evaluate('window.__serverKey') as number[];
    t.equal(Buffer.from(serverKey).toString('base64url'), vapid.publicKey, 'subscribed with the server\'s VAPID key');
    const bob = restClient(`${srv.http}/v1/chat`, await devToken('bob'));
    t.strictSame((await bob('GET', '/push/subscriptions')).body.data.subscriptions.map((s: { endpoint: string }) => s.endpoint), [sub.endpoint], 'the server has it');

    const alice = restClient(`${srv.http}/v1/chat`, await devToken('alice'));
    t.equal((await alice('POST', '/rooms', { roomId: 'web', name: 'Web', type: 'public' })).status, 201);
    t.equal((await bob('POST', '/rooms/web/join')).status, 200);
    await context.close(); // bob goes offline
    await eventually(async () => (await bob('GET', '/presence?userIds=bob')).body.data.presence[0].status === 'offline', 5000);
    t.equal((await alice('POST', '/rooms/web/messages', { content: 'look @bob' })).status, 201);
    await eventually(async () => push.received.some((p) => p.name === 'bob-browser'), 10_000);
    const got = push.received.filter((p) => p.name === 'bob-browser');
    t.equal(got.length, 1);
    t.equal(got[0]!.vapid.ok, true);
    t.match(got[0]!.payload, { ok: true, text: /"body":"look @bob"/ });
    t.strictSame(errors, [], 'no page errors');
  });
}
