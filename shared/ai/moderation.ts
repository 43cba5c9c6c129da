import type { ModerationLevel } from '../domain/models.ts';

/**
 * Word-list moderation, the same in every process (no model, no network): whole words and
 * phrases, ignoring case; spelled-out evasions ("b.a.d") are out of its reach. One precompiled
 * regular expression, so checking a message costs one scan of its text (docs/architecture.md,
 * "Moderation", has the measured cost per level).
 */
const CATEGORIES: Record<string, readonly string[]> = {
  abuse: ['idiot', 'moron', 'stupid', 'dumbass', 'loser', 'retard', 'scumbag'],
  profanity: ['fuck', 'fucking', 'fucker', 'shit', 'bullshit', 'bitch', 'asshole', 'bastard', 'cunt', 'dick'],
  threat: ['kill you', 'i will hurt you', 'beat you up', 'shoot you'],
  spam: ['buy followers', 'free crypto', 'click this link', 'work from home and earn'],
};

const TERM_CATEGORY = new Map<string, string>();
for (const [category, terms] of Object.entries(CATEGORIES)) for (const term of terms) TERM_CATEGORY.set(term, category);

const PATTERN = new RegExp(
  `(?<![\\p{L}\\p{N}])(${[...TERM_CATEGORY.keys()].sort((a, b) => b.length - a.length).map(escape).join('|')})(?![\\p{L}\\p{N}])`,
  'giu',
);

export interface ModerationVerdict {
  flagged: boolean;
  /** Categories found, each once, in a stable order. */
  categories: string[];
}

const CLEAN: ModerationVerdict = Object.freeze({ flagged: false, categories: [] as string[] }) as ModerationVerdict;

export function moderate(text: string): ModerationVerdict {
  PATTERN.lastIndex = 0;
  if (!PATTERN.test(text)) return CLEAN;
  // matchAll starts where test() stopped: from the start again
  PATTERN.lastIndex = 0;
  const found = new Set<string>();
  for (const m of text.normalize('NFKC').toLowerCase().matchAll(PATTERN)) found.add(TERM_CATEGORY.get(m[1]!.replace(/\s+/g, ' ')) ?? 'other');
  return { flagged: found.size > 0, categories: [...found].sort() };
}

/** Whether a room's level asks for any check at all: `none` must add no work. */
export function moderates(level: ModerationLevel): boolean {
  return level !== 'none';
}

function escape(term: string): string {
  return term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+');
}
