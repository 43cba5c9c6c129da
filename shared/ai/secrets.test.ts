import t from 'tap';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startFakeProvider } from '../../test/support/ai-provider-server.ts';
import { Assistant } from './assistant.ts';
import { createAiProviders } from './providers.ts';

const OPENAI_KEY = 'sk-live-0123456789abcdef';
const GEMINI_KEY = 'AIzaSy-9876543210fedcba';

t.test('ai secrets - API keys never reach the logs: not from the config, not from provider failures', async (t) => {
  let out = '';
  const sink = new Writable({ write(chunk: Buffer, _e, done) { out += chunk.toString(); done(); } });
  const log = createLogger('debug', {}, sink);
  const openai = await startFakeProvider('openai');
  const gemini = await startFakeProvider('gemini');
  t.teardown(async () => { await openai.close(); await gemini.close(); });
  const config = loadConfig({
    AI_PROVIDERS: 'gemini,openai', OPENAI_API_KEY: OPENAI_KEY, GEMINI_API_KEY: GEMINI_KEY,
    OPENAI_BASE_URL: openai.url, GEMINI_BASE_URL: gemini.url, AI_RESPONSE_TIMEOUT: '300',
  });
  log.info({ config }, 'config as loaded');
  log.info({ ai: config.ai }, 'ai section');
  log.info({ headers: { authorization: `Bearer ${OPENAI_KEY}`, 'x-goog-api-key': GEMINI_KEY } }, 'a request');
  gemini.script({ kind: 'status', status: 401 });
  openai.script({ kind: 'hang' });
  const assistant = new Assistant({ providers: createAiProviders(config.ai), timeoutMs: 300, log });
  await assistant.run({ task: 'answer', text: 'hi', history: [], room: [], stream: true }, () => {}).catch(() => undefined);
  t.match(out, /AI provider failed/, 'the failures were logged');
  t.match(out, /\[redacted\]/, 'the keys were there to redact');
  t.notMatch(out, OPENAI_KEY);
  t.notMatch(out, GEMINI_KEY);
  t.equal(gemini.seen[0]!.headers['x-goog-api-key'], GEMINI_KEY, 'while the provider did get its key');
});
