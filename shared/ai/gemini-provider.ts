import { AiProviderError, type AiCompletion, type AiPrompt, type AiProvider } from './ai.ts';
import { SYSTEM_PROMPT, userTurn } from './prompt.ts';
import { postJson, postSse } from './sse-request.ts';

export interface GeminiConfig {
  apiKey: string;
  /** `https://generativelanguage.googleapis.com/v1beta` */
  baseUrl: string;
  model: string;
}

/**
 * The Gemini API: `models/<model>:streamGenerateContent?alt=sse` when the answer is streamed (each
 * event a GenerateContentResponse), `:generateContent` when it is not; the key goes in the
 * `x-goog-api-key` header (never in the URL). The stream has no end marker: it ends with the
 * response; the last event carries `usageMetadata`.
 */
export function createGeminiProvider(cfg: GeminiConfig): AiProvider {
  const base = `${cfg.baseUrl.replace(/\/+$/, '')}/models/${encodeURIComponent(cfg.model)}`;
  const headers = { 'x-goog-api-key': cfg.apiKey };
  return {
    name: 'gemini',
    model: cfg.model,
    async complete(prompt: AiPrompt, onDelta, signal): Promise<AiCompletion> {
      const body = {
        systemInstruction: { parts: [{ text: SYSTEM_PROMPT }] },
        contents: [
          ...prompt.history.map((t) => ({ role: t.role === 'assistant' ? 'model' : 'user', parts: [{ text: t.content }] })),
          { role: 'user', parts: [{ text: userTurn(prompt) }] },
        ],
      };
      let text = '';
      let deltas = 0;
      let usage: UsageMetadata | undefined;
      const take = (response: unknown) => {
        const r = checkResponse(response, deltas);
        if (r.usageMetadata) usage = r.usageMetadata;
        for (const part of r.candidates?.[0]?.content?.parts ?? []) {
          if (typeof part.text === 'string' && part.text !== '' && part.thought !== true) {
            text += part.text;
            deltas++;
            onDelta(part.text);
          }
        }
      };
      if (prompt.stream) {
        await postSse(`${base}:streamGenerateContent?alt=sse`, headers, body, signal, (data) => take(parse(data, deltas)), () => deltas);
      } else {
        take(await postJson(`${base}:generateContent`, headers, body, signal));
      }
      if (deltas === 0) throw new AiProviderError('malformed', 'the answer held no text (blocked or empty)', 0);
      return { text, promptTokens: usage?.promptTokenCount ?? 0, completionTokens: usage?.candidatesTokenCount ?? 0 };
    },
  };
}

interface UsageMetadata { promptTokenCount?: number; candidatesTokenCount?: number; totalTokenCount?: number }
interface GenerateContentResponse {
  candidates?: Array<{ content?: { parts?: Array<{ text?: unknown; thought?: unknown }> } }>;
  usageMetadata?: UsageMetadata;
}

function parse(data: string, deltas: number): unknown {
  try {
    return JSON.parse(data);
  } catch (err) {
    throw new AiProviderError('malformed', 'a stream event is not JSON', deltas, { cause: err });
  }
}

function checkResponse(value: unknown, deltas: number): GenerateContentResponse {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AiProviderError('malformed', 'a response is not an object', deltas);
  const r = value as GenerateContentResponse & { error?: unknown };
  if (r.error) throw new AiProviderError('http', 'the provider reported an error', deltas);
  if (r.candidates !== undefined && !Array.isArray(r.candidates)) throw new AiProviderError('malformed', 'candidates is not a list', deltas);
  const parts = r.candidates?.[0]?.content?.parts;
  if (parts !== undefined && !Array.isArray(parts)) throw new AiProviderError('malformed', 'parts is not a list', deltas);
  return r;
}
