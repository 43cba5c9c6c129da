import { AiProviderError, type AiCompletion, type AiPrompt, type AiProvider } from './ai.ts';
import { SYSTEM_PROMPT, userTurn } from './prompt.ts';
import { postSse } from './sse-request.ts';

export interface OpenAiConfig {
  /** Optional: vLLM, Ollama and llama.cpp servers usually need none. */
  apiKey: string | undefined;
  /** Up to and including the version, without a trailing slash: `https://api.openai.com/v1`. */
  baseUrl: string;
  model: string;
}

/**
 * OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, the llama.cpp server), always
 * streamed: `data: {choices:[{delta:{content}}]}` events, then `data: [DONE]`. Usage comes in a
 * last chunk with empty `choices` (`stream_options.include_usage`); servers that ignore the option
 * send none, and the tokens are then 0 here (the chain estimates them). A stream that ends without
 * `[DONE]` was cut off: malformed.
 */
export function createOpenAiProvider(cfg: OpenAiConfig): AiProvider {
  const url = `${cfg.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
  return {
    name: 'openai',
    model: cfg.model,
    async complete(prompt: AiPrompt, onDelta, signal): Promise<AiCompletion> {
      const body = {
        model: cfg.model,
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: 'system', content: SYSTEM_PROMPT },
          ...prompt.history.map((t) => ({ role: t.role, content: t.content })),
          { role: 'user', content: userTurn(prompt) },
        ],
      };
      let text = '';
      let deltas = 0;
      let done = false;
      let promptTokens = 0;
      let completionTokens = 0;
      await postSse(url, headers, body, signal, (data) => {
        if (done) return;
        if (data === '[DONE]') {
          done = true;
          return;
        }
        const chunk = parseChunk(data, deltas);
        if (chunk.usage) {
          promptTokens = chunk.usage.prompt_tokens ?? 0;
          completionTokens = chunk.usage.completion_tokens ?? 0;
        }
        const piece = chunk.choices?.[0]?.delta?.content;
        if (typeof piece === 'string' && piece !== '') {
          text += piece;
          deltas++;
          onDelta(piece);
        }
      }, () => deltas);
      if (!done) throw new AiProviderError('malformed', 'the stream ended without [DONE]', deltas);
      return { text, promptTokens, completionTokens };
    },
  };
}

interface ChatChunk {
  choices?: Array<{ delta?: { content?: unknown } }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

function parseChunk(data: string, deltas: number): ChatChunk {
  let chunk: unknown;
  try {
    chunk = JSON.parse(data);
  } catch (err) {
    throw new AiProviderError('malformed', 'a stream event is not JSON', deltas, { cause: err });
  }
  if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) throw new AiProviderError('malformed', 'a stream event is not an object', deltas);
  const c = chunk as ChatChunk & { error?: { message?: unknown } };
  // vLLM and others report a failure mid-stream as an event with `error`
  if (c.error) throw new AiProviderError('http', 'the provider reported an error mid-stream', deltas);
  if (c.choices !== undefined && !Array.isArray(c.choices)) throw new AiProviderError('malformed', 'choices is not a list', deltas);
  return c;
}
