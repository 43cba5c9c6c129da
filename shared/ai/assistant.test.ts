import t, { type Test } from 'tap';
import { startFakeProvider } from '../../test/support/ai-provider-server.ts';
import { ChatError } from '../protocol/errors.ts';
import { silentLogger } from '../telemetry/logger.ts';
import { registry } from '../telemetry/metrics.ts';
import type { AiPrompt } from './ai.ts';
import { Assistant } from './assistant.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { createGeminiProvider } from './gemini-provider.ts';
import { createLocalProvider } from './local-provider.ts';
import { createOpenAiProvider } from './openai-provider.ts';

const prompt: AiPrompt = { task: 'answer', text: 'hi?', history: [], room: [], stream: true };

async function chain(t: Test, timeoutMs = 2000, breaker?: { failures: number; openMs: number }) {
  const openai = await startFakeProvider('openai');
  const gemini = await startFakeProvider('gemini');
  t.teardown(async () => { await openai.close(); await gemini.close(); });
  const assistant = new Assistant({
    providers: [
      createGeminiProvider({ apiKey: 'g-key', baseUrl: gemini.url, model: 'g' }),
      createOpenAiProvider({ apiKey: 'o-key', baseUrl: openai.url, model: 'o' }),
      createLocalProvider(),
    ],
    timeoutMs, log: silentLogger(), ...(breaker ? { breaker } : {}),
  });
  return { assistant, openai, gemini };
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const v = (metric?.values as Array<{ labels: Record<string, string>; value: number }> | undefined)
    ?.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

for (const [label, failure] of [
  ['429 without Retry-After', { kind: 'status', status: 429 }],
  ['500', { kind: 'status', status: 500 }],
  ['a hang (timeout)', { kind: 'hang' }],
  ['a malformed first chunk', { kind: 'malformed' }],
] as const) {
  t.test(`assistant - ${label} moves on to the next provider in order`, async (t) => {
    const { assistant, openai, gemini } = await chain(t as unknown as Test, 500);
    gemini.script(failure);
    openai.script({ kind: 'answer', pieces: ['from ', 'openai'], usage: { prompt: 3, completion: 2 } });
    const deltas: string[] = [];
    const a = await assistant.run(prompt, (d) => deltas.push(d));
    t.equal(gemini.seen.length, 1, 'gemini was tried first');
    t.equal(openai.seen.length, 1, 'then openai');
    t.equal(a.provider, 'openai');
    t.equal(a.text, 'from openai');
    t.same(deltas, ['from ', 'openai'], 'only the answering provider streamed');
    t.equal(a.promptTokens + a.completionTokens, 5);
  });
}

t.test('assistant - a 429 whose Retry-After fits in the timeout is waited out and tried again', async (t) => {
  const { assistant, openai, gemini } = await chain(t as unknown as Test, 3000);
  gemini.script({ kind: 'status', status: 429, retryAfter: '1' }, { kind: 'answer', pieces: ['after the wait'] });
  const started = Date.now();
  const a = await assistant.run(prompt, () => {});
  t.equal(a.provider, 'gemini');
  t.equal(gemini.seen.length, 2, 'same provider, second try');
  t.equal(openai.seen.length, 0);
  t.ok(Date.now() - started >= 900, 'waited about the Retry-After');
});

t.test('assistant - a Retry-After longer than the timeout moves on at once', async (t) => {
  const { assistant, openai, gemini } = await chain(t as unknown as Test, 1000);
  gemini.script({ kind: 'status', status: 429, retryAfter: '30' });
  const a = await assistant.run(prompt, () => {});
  t.equal(a.provider, 'openai');
  t.equal(gemini.seen.length, 1);
  t.equal(openai.seen.length, 1);
});

t.test('assistant - every remote failing falls back to local; with no local, unavailable (503)', async (t) => {
  const { assistant, openai, gemini } = await chain(t as unknown as Test, 500);
  gemini.script({ kind: 'status', status: 500 });
  openai.script({ kind: 'status', status: 503 });
  const a = await assistant.run(prompt, () => {});
  t.equal(a.provider, 'local');
  t.equal(a.confidence, 0, 'the local provider has no model for a question');

  const remoteOnly = new Assistant({
    providers: [createOpenAiProvider({ apiKey: 'k', baseUrl: openai.url, model: 'o' })], timeoutMs: 500, log: silentLogger(),
  });
  const before = await counter('chat_ai_requests_total', { provider: 'openai', outcome: 'http' });
  const err = await remoteOnly.run(prompt, () => {}).catch((e: unknown) => e);
  t.ok(err instanceof ChatError);
  t.equal((err as ChatError).code, 'unavailable');
  t.equal((err as ChatError).status, 503);
  t.equal(await counter('chat_ai_requests_total', { provider: 'openai', outcome: 'http' }), before + 1, 'the failure is counted per provider');
});

t.test('assistant - a failure mid-answer ends the request (no fallback once something was streamed), counted as malformed', async (t) => {
  const { assistant, openai, gemini } = await chain(t as unknown as Test, 500);
  gemini.script({ kind: 'malformed', after: ['half an '] });
  const before = await counter('chat_ai_requests_total', { provider: 'gemini', outcome: 'malformed' });
  const deltas: string[] = [];
  const err = await assistant.run(prompt, (d) => deltas.push(d)).catch((e: unknown) => e);
  t.ok(err instanceof ChatError);
  t.equal((err as ChatError).code, 'unavailable');
  t.equal((err as ChatError).details?.['partial'], true);
  t.same(deltas, ['half an ']);
  t.equal(openai.seen.length, 0, 'the next provider is not asked');
  t.equal(await counter('chat_ai_requests_total', { provider: 'gemini', outcome: 'malformed' }), before + 1);
});

t.test('assistant - tokens and latency are counted per provider', async (t) => {
  const { assistant, gemini } = await chain(t as unknown as Test);
  gemini.script({ kind: 'answer', pieces: ['x'], usage: { prompt: 100, completion: 20 } });
  const prompts = await counter('chat_ai_tokens_total', { provider: 'gemini', kind: 'prompt' });
  const completions = await counter('chat_ai_tokens_total', { provider: 'gemini', kind: 'completion' });
  await assistant.run(prompt, () => {});
  t.equal(await counter('chat_ai_tokens_total', { provider: 'gemini', kind: 'prompt' }), prompts + 100);
  t.equal(await counter('chat_ai_tokens_total', { provider: 'gemini', kind: 'completion' }), completions + 20);
  t.match(await registry.metrics(), /chat_ai_request_seconds_count\{provider="gemini"\} \d+/);
});

t.test('assistant - an open circuit skips the provider without calling it', async (t) => {
  const { assistant, openai, gemini } = await chain(t as unknown as Test, 500, { failures: 2, openMs: 60_000 });
  gemini.script({ kind: 'status', status: 500 });
  for (let i = 0; i < 3; i++) await assistant.run(prompt, () => {});
  t.equal(gemini.seen.length, 2, 'two failures opened the circuit; the third request skipped gemini');
  t.equal(openai.seen.length, 3);
});

t.test('circuit breaker - half open after openMs lets one trial through', async (t) => {
  let now = 0;
  const b = new CircuitBreaker(2, 1000, () => now);
  b.failure();
  t.ok(b.allow());
  b.failure();
  t.notOk(b.allow(), 'open');
  now = 1500;
  t.ok(b.allow(), 'the trial');
  t.notOk(b.allow(), 'only one trial at a time');
  b.success();
  t.equal(b.state, 'closed');
  t.ok(b.allow());
});

