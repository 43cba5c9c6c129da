import type { AiTask } from './ai.ts';

/**
 * What makes the assistant answer in a room (with `settings.enableAI`): a message that starts
 * with `@ai` or `@assistant` (any case) followed by a space, a colon, a comma or its end. The
 * seed's phrases ("Can you explain...", "Summarize this...", "Translate: ...") trigger it only after
 * that address (`@ai can you explain ...`, `@ai summarize this`, `@ai translate: ...`): people say
 * "can you explain" to each other all the time, and a bare phrase would make the assistant answer
 * conversations that were not meant for it (and cost a scan of every message).
 *
 * The check that runs on every send is `mayTriggerAi`: one character comparison for messages
 * that do not start with '@'.
 */
const ADDRESS = /^@(ai|assistant)(?=$|[\s:,.!?])[\s:,]*/i;

export function mayTriggerAi(content: string): boolean {
  return content.charCodeAt(0) === 64 /* @ */ && ADDRESS.test(content);
}

export interface AiCommand {
  task: AiTask;
  /** The question, the text to translate, or a focus for a summary. */
  text: string;
  /** translate: the target language. */
  language?: string;
  /** summarize: how many recent messages; undefined for "since my read mark" (else the default). */
  count?: number;
}

const SUMMARIZE = /^(?:summari[sz]e|summary|tl;?dr)\b(?:\s+(?:this|the\s+room|the\s+chat))?(?:\s+(?:the\s+)?(?:last\s+)?(\d{1,4})(?:\s+messages?)?)?\s*[:,.!?]?\s*([\s\S]*)$/i;
// "translate fr: text", "translate to French: text", and the seed's "Translate: text" (English)
const TRANSLATE = /^translate\b(?:\s+(?:to|into)\s+|\s+)?([\p{L}-]{2,30})?\s*:\s*([\s\S]+)$/iu;
const SENTIMENT = /^(?:sentiment|mood)\b\s*[:,]?\s*([\s\S]*)$/i;

/** Reads the command after the address; anything else is a question. */
export function parseAiCommand(content: string): AiCommand {
  const rest = content.replace(ADDRESS, '').trim();
  let m = SUMMARIZE.exec(rest);
  if (m) return { task: 'summarize', text: m[2]!.replace(/^[\s.…!?:,]+|[\s.…!?]+$/g, ''), ...(m[1] ? { count: Number(m[1]) } : {}) };
  m = TRANSLATE.exec(rest);
  if (m) return { task: 'translate', text: m[2]!.trim(), language: m[1] ?? 'English' };
  m = SENTIMENT.exec(rest);
  if (m) return { task: 'sentiment', text: m[1]!.trim() };
  return { task: 'answer', text: rest };
}
