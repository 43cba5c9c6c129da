import { ChatError } from '../protocol/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { inSpan, SpanKind } from '../telemetry/tracing.ts';
import { AiProviderError, type AiPrompt, type AiProvider, type AiProviderName } from './ai.ts';
import { aiMetrics } from './ai-metrics.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { estimateTokens, userTurn } from './prompt.ts';

export interface AssistantOptions {
  /** In fallback order. */
  providers: AiProvider[];
  /** AI_RESPONSE_TIMEOUT: how long each provider has for its whole answer, Retry-After waits included. */
  timeoutMs: number;
  log: Logger;
  breaker?: { failures: number; openMs: number };
}

export interface AssistantAnswer {
  text: string;
  provider: AiProviderName;
  model: string;
  promptTokens: number;
  completionTokens: number;
  confidence: number;
  sources: string[];
  responseTimeMs: number;
}

/** What a remote model's answer is reported as: the seed's field, with no score from the API to fill it. */
const REMOTE_CONFIDENCE = 0.8;

/**
 * The fallback chain: tries the providers in order, skipping those whose circuit is open. A
 * provider that fails before it said anything (429, 5xx, unreachable, malformed, timed out) hands
 * over to the next; a 429 whose Retry-After still fits in the provider's time is waited out and
 * tried once more first. A provider that fails after some of its answer was streamed ends the
 * request: what was shown cannot be taken back, so the caller reports the failure.
 *
 * Throws ChatError: `unavailable` when every provider failed (or was skipped), `timeout` when the
 * answer was cut off mid-stream by AI_RESPONSE_TIMEOUT, `unavailable` for any other mid-stream
 * failure; `details.partial` says whether deltas were delivered.
 */
export class Assistant {
  private readonly breakers = new Map<AiProvider, CircuitBreaker>();

  constructor(private readonly opts: AssistantOptions) {
    for (const p of opts.providers) this.breakers.set(p, new CircuitBreaker(opts.breaker?.failures, opts.breaker?.openMs));
  }

  get providerNames(): AiProviderName[] {
    return this.opts.providers.map((p) => p.name);
  }

  async run(prompt: AiPrompt, onDelta: (text: string) => void, signal?: AbortSignal): Promise<AssistantAnswer> {
    const started = performance.now();
    const attempts: Array<{ provider: string; outcome: string }> = [];
    for (const provider of this.opts.providers) {
      const breaker = this.breakers.get(provider)!;
      if (!breaker.allow()) {
        aiMetrics.requests.inc({ provider: provider.name, outcome: 'skipped' });
        attempts.push({ provider: provider.name, outcome: 'circuit_open' });
        continue;
      }
      try {
        const answer = await this.attempt(provider, prompt, onDelta, signal);
        breaker.success();
        return { ...answer, responseTimeMs: Math.round(performance.now() - started) };
      } catch (err) {
        const failure = err instanceof AiProviderError ? err : new AiProviderError('network', 'provider failed', 0, { cause: err });
        breaker.failure();
        attempts.push({ provider: provider.name, outcome: failure.kind });
        this.opts.log.warn({ provider: provider.name, model: provider.model, kind: failure.kind, status: failure.options.status, deltas: failure.deltas, err: failure.cause }, 'AI provider failed');
        if (failure.deltas > 0) {
          throw new ChatError(failure.kind === 'timeout' ? 'timeout' : 'unavailable', `the AI answer broke off (${provider.name}: ${failure.kind})`, {
            details: { partial: true, attempts },
          });
        }
        if (signal?.aborted) break;
      }
    }
    throw new ChatError('unavailable', 'no AI provider could answer', { details: { partial: false, attempts } });
  }

  /** One provider, within its time; a 429 with a Retry-After that fits is retried once. */
  private async attempt(provider: AiProvider, prompt: AiPrompt, onDelta: (text: string) => void, outer: AbortSignal | undefined) {
    const deadline = performance.now() + this.opts.timeoutMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
    const stop = () => controller.abort();
    outer?.addEventListener('abort', stop, { once: true });
    try {
      for (let retried = false; ; retried = true) {
        try {
          return await this.call(provider, prompt, onDelta, controller.signal);
        } catch (err) {
          const wait = err instanceof AiProviderError && err.kind === 'rate_limited' ? err.options.retryAfterMs : undefined;
          if (retried || wait === undefined || performance.now() + wait >= deadline) throw err;
          await sleep(wait, controller.signal);
          if (controller.signal.aborted) throw new AiProviderError('timeout', 'timed out waiting out Retry-After', 0);
        }
      }
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', stop);
    }
  }

  private call(provider: AiProvider, prompt: AiPrompt, onDelta: (text: string) => void, signal: AbortSignal) {
    const started = performance.now();
    return inSpan(`ai.complete ${provider.name}`, SpanKind.CLIENT, { 'ai.provider': provider.name, 'ai.model': provider.model, 'ai.task': prompt.task }, async (span) => {
      try {
        const c = await provider.complete(prompt, onDelta, signal);
        // servers that send no usage (some OpenAI-compatible ones): estimated, so budgets still hold
        const promptTokens = c.promptTokens || estimateTokens(userTurn(prompt));
        const completionTokens = c.completionTokens || estimateTokens(c.text);
        aiMetrics.requests.inc({ provider: provider.name, outcome: 'ok' });
        aiMetrics.tokens.inc({ provider: provider.name, kind: 'prompt' }, promptTokens);
        aiMetrics.tokens.inc({ provider: provider.name, kind: 'completion' }, completionTokens);
        span.setAttributes({ 'ai.tokens.prompt': promptTokens, 'ai.tokens.completion': completionTokens });
        return {
          text: c.text, provider: provider.name, model: provider.model, promptTokens, completionTokens,
          confidence: c.confidence ?? REMOTE_CONFIDENCE, sources: c.sources ?? [],
        };
      } catch (err) {
        const kind = err instanceof AiProviderError ? err.kind : 'network';
        aiMetrics.requests.inc({ provider: provider.name, outcome: kind });
        span.setAttribute('ai.failure', kind);
        throw err;
      } finally {
        aiMetrics.latency.observe({ provider: provider.name }, (performance.now() - started) / 1000);
      }
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
