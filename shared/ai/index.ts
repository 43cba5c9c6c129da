import type { AiConfig } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Assistant } from './assistant.ts';
import { createAiProviders } from './providers.ts';

export { AI_PROVIDER_NAMES, AiProviderError, type AiProvider, type AiProviderName, type AiPrompt, type AiCompletion, type AiTask } from './ai.ts';
export { Assistant, type AssistantAnswer, type AssistantOptions } from './assistant.ts';
export { createAiProviders } from './providers.ts';
export { createOpenAiProvider, type OpenAiConfig } from './openai-provider.ts';
export { createGeminiProvider, type GeminiConfig } from './gemini-provider.ts';
export { createLocalProvider, NO_MODEL_ANSWER } from './local-provider.ts';
export { startAiWorkers, HELP_ANSWER, type AiWorkers, type AiWorkerDeps } from './ai-worker.ts';
export { createAiAsker, type AiAsker, type AskInput, type AskAnswer } from './ai-asker.ts';
export { moderate, type ModerationVerdict } from './moderation.ts';
export { sentimentOf } from './sentiment.ts';
export { mayTriggerAi, parseAiCommand, type AiCommand } from './triggers.ts';
export { SYSTEM_PROMPT } from './prompt.ts';

/** The configured fallback chain. */
export function createAssistant(cfg: AiConfig, log: Logger): Assistant {
  return new Assistant({ providers: createAiProviders(cfg), timeoutMs: cfg.timeoutMs, log });
}

/** How long an asker waits for a worker: every provider's timeout in turn, plus slack for the bus and the store. */
export function askWaitMs(cfg: Pick<AiConfig, 'providers' | 'timeoutMs'>): number {
  return cfg.providers.length * cfg.timeoutMs + 5000;
}
