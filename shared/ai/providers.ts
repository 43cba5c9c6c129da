import type { AiConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import type { AiProvider } from './ai.ts';
import { createGeminiProvider } from './gemini-provider.ts';
import { createLocalProvider } from './local-provider.ts';
import { createOpenAiProvider } from './openai-provider.ts';

/** The configured providers, in AI_PROVIDERS order; each adapter gets only its own section. */
export function createAiProviders(cfg: Pick<AiConfig, 'providers' | 'openai' | 'gemini'>): AiProvider[] {
  return cfg.providers.map((name): AiProvider => {
    switch (name) {
      case 'openai':
        return createOpenAiProvider(cfg.openai);
      case 'gemini':
        if (!cfg.gemini.apiKey) throw new ChatError('internal', 'GEMINI_API_KEY is required for the gemini provider');
        return createGeminiProvider({ ...cfg.gemini, apiKey: cfg.gemini.apiKey });
      case 'local':
        return createLocalProvider();
      default: {
        const never: never = name;
        throw new ChatError('internal', `unknown AI provider ${JSON.stringify(never)}`);
      }
    }
  });
}
