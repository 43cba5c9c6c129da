import type { Test } from 'tap';
import { restClient } from './rest.ts';
import { devToken } from './tokens.ts';
import { TestClient } from './ws-client.ts';
import { startChatProcess, removeDir, type ChatProcess } from './chat-process.ts';
import { signMeta, startFakePlatforms, type FakePlatforms } from './fake-platforms.ts';

/** `chat all` embedded, with retries short enough for a test to see a dead letter. */
export const CHANNELS_TEST_ENV: Readonly<Record<string, string>> = {
  NODE_ID: '', NATS_URL: '', REDIS_URL: '', BUS: 'memory', STORE: 'sqlite',
  CHANNELS_RETRY_INITIAL_MS: '20', CHANNELS_RETRY_MAX_MS: '50', CHANNELS_MAX_ATTEMPTS: '3',
};

export interface ChannelsFixture { srv: ChatProcess; fake: FakePlatforms }

/** Fake platforms and a `chat all` pointed at them (`env` names their credentials), both gone at teardown. */
export async function channelsFixture(t: Test, env: (fake: FakePlatforms) => Record<string, string>): Promise<ChannelsFixture> {
  const fake = await startFakePlatforms();
  const srv = await startChatProcess({ env: { ...CHANNELS_TEST_ENV, ...env(fake) } });
  t.teardown(async () => {
    await srv.kill();
    removeDir(srv.dataDir);
    await fake.close();
  });
  return { srv, fake };
}

/** Posts a Meta webhook (WhatsApp, Messenger) signed with `appSecret`, or with `signature` (null: none). */
export async function postMetaWebhook(f: ChannelsFixture, platform: 'whatsapp' | 'messenger', body: string, appSecret: string, signature?: string | null) {
  const sig = signature === undefined ? signMeta(appSecret, body) : signature;
  const res = await fetch(`${f.srv.http}/v1/channels/${platform}/webhook`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', ...(sig ? { 'x-hub-signature-256': sig } : {}) },
  });
  return { status: res.status, body: await res.json() as any };
}

/** The agent, joined to a channel room (a person wrote once), with a socket in the room. */
export async function agentInRoom(t: Test, f: ChannelsFixture, roomId: string) {
  const agent = restClient(`${f.srv.http}/v1/chat`, await devToken('agent', { name: 'Agent Smith' }));
  t.equal((await agent('POST', `/rooms/${roomId}/join`)).status, 200);
  const ws = await TestClient.connect(`${f.srv.ws}/chat`, { token: await devToken('agent') });
  t.teardown(() => ws.close());
  await ws.next((x) => x.type === 'welcome');
  t.equal((await ws.request({ type: 'join_room', roomId })).type, 'ack');
  return { agent, ws };
}
