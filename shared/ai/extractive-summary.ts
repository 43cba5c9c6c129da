/**
 * An extractive summary: the sentences that carry the most frequent content words of the text,
 * in their original order. No model, no network: what the local provider can honestly offer.
 */
const STOP_WORDS = new Set((
  'a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our she so ' +
  'that the their them then there these they this to too us was we were what when which who will with you your yes ok ' +
  'do does did just can could would should about all any been being had how more most other out over some such than up very'
).split(' '));

export interface SummaryInput {
  author: string;
  content: string;
}

export function extractiveSummary(lines: readonly SummaryInput[], maxSentences = 3): string {
  const sentences: Array<{ text: string; author: string; index: number; words: string[] }> = [];
  for (const line of lines) {
    for (const raw of line.content.split(/(?<=[.!?])\s+|\n+/)) {
      const text = raw.trim();
      if (text.length < 3) continue;
      sentences.push({ text, author: line.author, index: sentences.length, words: contentWords(text) });
    }
  }
  if (sentences.length === 0) return '';
  const frequency = new Map<string, number>();
  for (const s of sentences) for (const w of new Set(s.words)) frequency.set(w, (frequency.get(w) ?? 0) + 1);
  const scored = sentences.map((s) => ({
    s,
    score: s.words.length === 0 ? 0 : s.words.reduce((sum, w) => sum + (frequency.get(w) ?? 0), 0) / Math.sqrt(s.words.length),
  }));
  const best = scored.sort((a, b) => b.score - a.score || a.s.index - b.s.index).slice(0, maxSentences).map((x) => x.s);
  return best.sort((a, b) => a.index - b.index).map((s) => `${s.author}: ${s.text}`).join('\n');
}

function contentWords(text: string): string[] {
  return (text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').match(/\p{L}[\p{L}\p{N}'-]*/gu) ?? [])
    .filter((w) => w.length > 2 && !STOP_WORDS.has(w));
}
