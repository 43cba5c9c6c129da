import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';

/**
 * The web page at `/` in a real headless Chromium (Debian's package, driven by playwright-core),
 * against `chat all` as a real process: two people in two browser contexts sign in by name, meet
 * in a room, talk, see each other type and react, and HTML in a message stays text.
 */
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
const XSS = '<img src=x onerror=alert(1)>';

if (!existsSync(CHROMIUM) && process.env['CI'] !== 'true') {
  t.test('web page - in a real browser', { skip: `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` }, () => {});
} else {
  let srv: ChatProcess;
  let browser: Browser;
  const dialogs: string[] = [];
  const pageErrors: string[] = [];

  t.before(async () => {
    srv = await startChatProcess({ env: { PERSIST_INTERVAL_MS: '20', TYPING_TIMEOUT: '3000' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // playwright gives each launch a fresh temporary profile (user-data-dir)
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
  });

  t.teardown(async () => {
    await browser?.close();
    await srv?.kill();
    if (srv) removeDir(srv.dataDir);
  });

  async function signIn(name: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    const page = await context.newPage();
    page.on('dialog', (d) => { dialogs.push(`${name}: ${d.message()}`); void d.dismiss(); });
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
    await page.goto(`${srv.http}/`);
    await page.locator('input[name=name]').fill(name);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByTestId('me').filter({ hasText: name }).waitFor();
    await page.getByTestId('connection').filter({ hasText: 'connected · websocket' }).waitFor();
    return page;
  }

  const message = (page: Page, text: string) => page.getByTestId('message').filter({ has: page.getByTestId('message-content').getByText(text, { exact: true }) });

  async function send(page: Page, text: string): Promise<void> {
    await page.getByTestId('composer-input').fill(text);
    await page.getByTestId('composer-input').press('Enter');
    await message(page, text).waitFor();
  }

  t.test('web page - served with its content types and a strict CSP', async (t) => {
    const res = await fetch(`${srv.http}/`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /^text\/html; charset=utf-8/);
    t.match(res.headers.get('content-security-policy'), /script-src 'self'/);
    const html = await res.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const style = /href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1];
    t.ok(script && style, 'the page links its bundle');
    const js = await fetch(`${srv.http}${script}`);
    t.match(js.headers.get('content-type'), /^text\/javascript/);
    t.match(js.headers.get('cache-control'), /immutable/);
    t.match((await fetch(`${srv.http}${style}`)).headers.get('content-type'), /^text\/css/);
    t.equal((await fetch(`${srv.http}/assets/nope.js`)).status, 404);
  });

  t.test('web page - two people chat: messages, reply, typing, reaction, presence; HTML stays text', async (t) => {
    const alice = await signIn('Alice');
    await alice.getByTestId('new-room').click();
    await alice.locator('input[name=room-name]').fill('Lunch plans');
    await alice.getByTestId('create-room').getByRole('button', { name: 'Create' }).click();
    await alice.getByTestId('room-title').filter({ hasText: 'Lunch plans' }).waitFor();

    const bob = await signIn('Bob');
    await bob.getByTestId('discover-room').filter({ hasText: 'Lunch plans' }).getByTestId('join').click();
    await bob.getByTestId('room-title').filter({ hasText: 'Lunch plans' }).waitFor();

    await send(alice, 'Hi Bob! Lunch at noon?');
    await message(bob, 'Hi Bob! Lunch at noon?').waitFor();
    t.pass('bob sees what alice sent');

    await message(bob, 'Hi Bob! Lunch at noon?').hover();
    await message(bob, 'Hi Bob! Lunch at noon?').getByTestId('reply').click();
    await send(bob, 'Sounds good, the usual place?');
    const reply = message(alice, 'Sounds good, the usual place?');
    await reply.getByTestId('reply-preview').filter({ hasText: 'Hi Bob! Lunch at noon?' }).waitFor();
    t.pass('alice sees bob\'s reply, quoting her message');

    await bob.getByTestId('composer-input').pressSequentially('I am typing', { delay: 20 });
    await alice.getByTestId('typing').filter({ hasText: 'Bob is typing' }).waitFor();
    t.pass('alice sees bob typing');
    await bob.getByTestId('composer-input').fill('');

    await reply.hover();
    await reply.getByTestId('react-👍').click();
    await message(bob, 'Sounds good, the usual place?').getByTestId('reaction').filter({ hasText: '👍 1' }).waitFor();
    t.pass('bob sees alice\'s reaction');

    const bobDot = alice.getByTestId('member').filter({ hasText: 'Bob' }).getByTestId('presence');
    await t.resolves(bobDot.and(alice.locator('[data-status=online]')).waitFor(), 'alice sees bob online');

    await send(bob, XSS);
    const content = message(alice, XSS).getByTestId('message-content');
    await content.waitFor();
    t.equal(await content.textContent(), XSS, 'the message shows as the literal text');
    t.match(await content.innerHTML(), /&lt;img src=x onerror=alert\(1\)&gt;/, 'escaped in the DOM');
    t.equal(await alice.locator('[data-testid=messages] img').count(), 0, 'no img element was created');
    t.equal(await bob.locator('[data-testid=messages] img').count(), 0, 'not on the sender\'s page either');
    await alice.waitForTimeout(300); // an onerror handler would have fired by now
    t.same(dialogs, [], 'no dialog was opened');
    t.same(pageErrors, [], 'no script error on either page');

    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'web-chat-alice.png') });
    await bob.screenshot({ path: join(ARTIFACTS, 'web-chat-bob.png') });
  });
}
