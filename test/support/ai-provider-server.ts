import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP server that speaks an AI provider's real wire format, scripted per request: the
 * OpenAI chat-completions stream (`data: {choices:[{delta}]}` ... `data: [DONE]`, usage in a last
 * chunk), Gemini's `streamGenerateContent?alt=sse` and `generateContent`, and the failures the
 * fallback chain must survive (429 with Retry-After, 500, a hang, malformed events).
 */
export type Behaviour =
  | { kind: 'answer'; pieces: string[]; usage?: { prompt: number; completion: number }; delayMs?: number }
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'malformed'; after?: string[] }
  | { kind: 'truncated'; pieces: string[] }
  /** One `data:` line that never ends: `megabytes` MiB, then the response stays open. */
  | { kind: 'endless'; megabytes: number };

export interface SeenRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface FakeProvider {
  url: string;
  seen: SeenRequest[];
  /** Behaviours for the next requests, in order; the last one repeats. */
  script(...behaviours: Behaviour[]): void;
  close(): Promise<void>;
}

export async function startFakeProvider(flavour: 'openai' | 'gemini'): Promise<FakeProvider> {
  let queue: Behaviour[] = [{ kind: 'answer', pieces: ['ok'] }];
  const seen: SeenRequest[] = [];
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readJson(req);
      seen.push({ path: req.url ?? '', headers: req.headers, body });
      const b = queue.length > 1 ? queue.shift()! : queue[0]!;
      open.add(res);
      res.on('close', () => open.delete(res));
      await play(flavour, req.url ?? '', b, res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: flavour === 'openai' ? `http://127.0.0.1:${port}/v1` : `http://127.0.0.1:${port}/v1beta`,
    seen,
    script(...behaviours) {
      queue = behaviours;
    },
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function play(flavour: 'openai' | 'gemini', url: string, b: Behaviour, res: ServerResponse): Promise<void> {
  switch (b.kind) {
    case 'status':
      res.writeHead(b.status, { 'content-type': 'application/json', ...(b.retryAfter ? { 'retry-after': b.retryAfter } : {}) });
      res.end(JSON.stringify({ error: { message: `fake ${b.status}` } }));
      return;
    case 'hang':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      return; // never writes: the client's timeout must cut it off
    case 'malformed':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const p of b.after ?? []) res.write(event(flavour, p));
      res.write('data: {"choices": [ {"delta": \n\n');
      res.end();
      return;
    case 'endless': {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: ');
      const block = 'x'.repeat(64 * 1024);
      for (let i = 0; i < b.megabytes * 16 && !res.destroyed; i++) {
        if (!res.write(block)) await new Promise((r) => res.once('drain', r).once('close', r));
      }
      return; // left open: only the client's bound can end it before its timeout
    }
    case 'truncated':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const p of b.pieces) res.write(event(flavour, p));
      res.end(); // no [DONE]
      return;
    case 'answer': {
      const usage = b.usage ?? { prompt: 11, completion: 7 };
      if (flavour === 'gemini' && url.includes(':generateContent')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(geminiResponse(b.pieces.join(''), usage)));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const p of b.pieces) {
        res.write(event(flavour, p));
        if (b.delayMs) await new Promise((r) => setTimeout(r, b.delayMs));
      }
      if (flavour === 'openai') {
        res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion } })}\n\n`);
        res.write('data: [DONE]\n\n');
      } else {
        res.write(`data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: usage.prompt, candidatesTokenCount: usage.completion, totalTokenCount: usage.prompt + usage.completion } })}\r\n\r\n`);
      }
      res.end();
      return;
    }
    default: {
      const never: never = b;
      throw new Error(`unknown behaviour ${JSON.stringify(never)}`);
    }
  }
}

function event(flavour: 'openai' | 'gemini', piece: string): string {
  if (flavour === 'openai') {
    return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`;
  }
  // Gemini separates events with CRLF pairs
  return `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: piece }] } }] })}\r\n\r\n`;
}

function geminiResponse(text: string, usage: { prompt: number; completion: number }) {
  return {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP' }],
    usageMetadata: { promptTokenCount: usage.prompt, candidatesTokenCount: usage.completion, totalTokenCount: usage.prompt + usage.completion },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
