import type { AiCompletion, AiPrompt, AiProvider } from './ai.ts';
import { extractiveSummary } from './extractive-summary.ts';
import { estimateTokens } from './prompt.ts';
import { sentimentOf } from './sentiment.ts';

export const NO_MODEL_ANSWER = 'No AI model is configured on this server, so I can only summarize a room, '
  + 'tell its sentiment and moderate messages. An operator can set AI_PROVIDERS (openai, gemini) to answer questions and translate.';

/**
 * Works offline with no model: an extractive summary of the room's messages, lexicon sentiment,
 * and for anything that needs a model (open questions, translation) a plain statement that none is
 * configured, with confidence 0. Streams its answer a few words at a time like the remote ones,
 * so rooms and clients take the same path whatever the provider.
 */
export function createLocalProvider(): AiProvider {
  return {
    name: 'local',
    model: 'local-extractive',
    async complete(prompt: AiPrompt, onDelta, signal): Promise<AiCompletion> {
      const { text, confidence } = answer(prompt);
      for (const piece of pieces(text)) {
        if (signal.aborted) break;
        onDelta(piece);
      }
      const input = prompt.text + prompt.room.map((l) => l.content).join(' ');
      return { text, confidence, promptTokens: estimateTokens(input), completionTokens: estimateTokens(text) };
    },
  };
}

function answer(prompt: AiPrompt): { text: string; confidence: number } {
  switch (prompt.task) {
    case 'summarize': {
      const summary = extractiveSummary(prompt.room.map((l) => ({ author: l.author, content: l.content })));
      return summary
        ? { text: `Summary of ${prompt.room.length} message${prompt.room.length === 1 ? '' : 's'}:\n${summary}`, confidence: 0.5 }
        : { text: 'There is nothing to summarize yet.', confidence: 0.5 };
    }
    case 'sentiment': {
      const text = prompt.text || prompt.room.map((l) => l.content).join('\n');
      const s = sentimentOf(text);
      return { text: `Sentiment: ${s.label} (score ${s.score.toFixed(2)}, ${s.evidence} word${s.evidence === 1 ? '' : 's'} with a polarity).`, confidence: s.evidence ? 0.4 : 0.1 };
    }
    case 'translate':
    case 'answer':
      return { text: NO_MODEL_ANSWER, confidence: 0 };
    default: {
      const never: never = prompt.task;
      throw new Error(`unknown AI task ${String(never)}`);
    }
  }
}

/** A few words per piece, spaces kept, so joining the pieces gives the text back. */
function pieces(text: string): string[] {
  const words = text.match(/\S+\s*/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < words.length; i += 4) out.push(words.slice(i, i + 4).join(''));
  if (out.length && /^\s+/.test(text)) out[0] = text.match(/^\s+/)![0] + out[0];
  return out;
}
