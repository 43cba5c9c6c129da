/**
 * The AI port: a provider turns a prompt into an answer, streamed as text deltas.
 *
 * Contract:
 * - `complete` calls `onDelta` with each piece of the answer in order (never with ''), then
 *   resolves with the whole text and the tokens the provider counted (0 where it counted none).
 * - It stops at once, rejecting with AiProviderError('timeout'), when `signal` aborts.
 * - Every failure is an AiProviderError whose `kind` tells the fallback chain what happened:
 *   `rate_limited` (with the provider's Retry-After, when it gave one), `http` (any other
 *   non-2xx), `malformed` (the answer did not parse as the provider's wire format), `timeout`,
 *   `network`. `deltas` says how many deltas were delivered before it failed: the chain moves on
 *   to the next provider only when none were (an answer already on screen is not replaced).
 * - A provider holds no per-request state; one instance serves concurrent requests.
 * - Keys are sent only in headers, never in a URL (URLs end up in logs and traces).
 */
export interface AiProvider {
  readonly name: AiProviderName;
  readonly model: string;
  complete(prompt: AiPrompt, onDelta: (text: string) => void, signal: AbortSignal): Promise<AiCompletion>;
}

export const AI_PROVIDER_NAMES = ['openai', 'gemini', 'local'] as const;
export type AiProviderName = (typeof AI_PROVIDER_NAMES)[number];

export type AiTask = 'answer' | 'summarize' | 'translate' | 'sentiment';

export interface AiTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A room message given to the assistant as context: data, never instructions. */
export interface AiContextLine {
  author: string;
  content: string;
  at: string;
}

export interface AiPrompt {
  task: AiTask;
  /** The question, the text to summarize around, or the text to translate. */
  text: string;
  /** `translate`: the target language as the user wrote it. */
  language?: string;
  /** Earlier turns of the caller's own context (no room). */
  history: AiTurn[];
  /** The room's messages, oldest first. */
  room: AiContextLine[];
  /** The seed's free-form `context` hint ("software_development"). */
  topic?: string;
  /** Whether the caller shows the answer as it comes; false lets a provider answer in one piece. */
  stream: boolean;
}

export interface AiCompletion {
  text: string;
  promptTokens: number;
  completionTokens: number;
  /** 0-1; remote providers give none, the chain then reports its default. */
  confidence?: number;
  sources?: string[];
}

export type AiFailureKind = 'rate_limited' | 'http' | 'malformed' | 'timeout' | 'network';

export class AiProviderError extends Error {
  constructor(
    readonly kind: AiFailureKind,
    message: string,
    readonly deltas: number,
    readonly options: { retryAfterMs?: number; status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AiProviderError';
  }
}
