import WebSocket from 'ws';
import { startFakeProvider, type FakeProvider } from '../../test/support/ai-provider-server.ts';
import { devToken } from '../../test/support/tokens.ts';

/**
 * The AI side of the `ai` scenario, in its own process so that neither the faked provider nor the
 * chunks it causes take CPU from the process that measures ordinary messages: serves an
 * OpenAI-compatible stream, holds the members of the AI rooms, and keeps one answer streaming
 * per room (a new `@ai` question as soon as the last answer is done) while told to.
 */
export type AiLoadCommand =
  | { cmd: 'provider'; chunks: number; chunkMs: number }
  | { cmd: 'clients'; ws: string; rooms: Array<{ roomId: string; users: string[] }> }
  | { cmd: 'stream'; on: boolean }
  | { cmd: 'stats' }
  | { cmd: 'close' };

let provider: FakeProvider | undefined;
const sockets: WebSocket[] = [];
const askers: Array<() => void> = [];
let streaming = false;
let chunks = 0;
let answers = 0;

process.on('message', (m: AiLoadCommand) => {
  void handle(m).then((reply) => process.send!(reply), (err: unknown) => process.send!({ error: String(err) }));
});

async function handle(m: AiLoadCommand): Promise<unknown> {
  switch (m.cmd) {
    case 'provider': {
      provider = await startFakeProvider('openai');
      provider.script({ kind: 'answer', pieces: Array.from({ length: m.chunks }, (_, i) => `word${i} `), delayMs: m.chunkMs, usage: { prompt: 50, completion: m.chunks } });
      return { url: provider.url };
    }
    case 'clients':
      for (const room of m.rooms) {
        const [asker] = await Promise.all(room.users.map((u, i) => connect(m.ws, u, room.roomId, i === 0)));
        const ws = asker!;
        askers.push(() => ws.send(JSON.stringify({ type: 'send_message', roomId: room.roomId, content: '@ai tell me a long story' })));
      }
      return { ok: true };
    case 'stream':
      streaming = m.on;
      if (m.on) for (const ask of askers) ask();
      return { ok: true };
    case 'stats':
      return { chunks, answers };
    case 'close':
      for (const ws of sockets) ws.terminate();
      await provider?.close();
      setImmediate(() => process.exit(0));
      return { ok: true };
    default: {
      const never: never = m;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
}

async function connect(base: string, user: string, roomId: string, asks: boolean): Promise<WebSocket> {
  const ws = new WebSocket(`${base}/chat?token=${encodeURIComponent(await devToken(user))}`, { perMessageDeflate: false });
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  let joinedNow: () => void = () => {};
  const joined = new Promise<void>((resolve) => { joinedNow = resolve; });
  ws.on('message', (data: Buffer) => {
    const raw = data.toString('utf8');
    if (raw.includes('"ref":"join"')) return joinedNow();
    if (!raw.startsWith('{"type":"ai_response"')) return undefined;
    if (!raw.includes('"done":true')) chunks++;
    else if (asks) {
      answers++;
      if (streaming) ws.send(JSON.stringify({ type: 'send_message', roomId, content: '@ai tell me a long story' }));
    }
    return undefined;
  });
  ws.send(JSON.stringify({ type: 'join_room', roomId, ref: 'join' }));
  await joined;
  return ws;
}
