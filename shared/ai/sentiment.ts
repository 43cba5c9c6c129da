/**
 * Lexicon sentiment: words with a polarity, a negation flips the next two words. Crude, offline,
 * and predictable, which is the point of the local provider.
 */
const POSITIVE = new Set((
  'good great excellent amazing awesome love loved lovely like liked nice happy glad thanks thank thankful perfect fantastic ' +
  'wonderful brilliant cool fine best better enjoy enjoyed pleased helpful works working fixed yay congrats congratulations well'
).split(' '));
const NEGATIVE = new Set((
  'bad terrible awful horrible hate hated dislike sad angry annoyed broken bug bugs fail failed failing failure worse worst ' +
  'wrong problem problems issue issues slow crash crashed crashes error errors sorry unfortunately disappointed ugly useless'
).split(' '));
const NEGATIONS = new Set(['not', 'no', 'never', "don't", "doesn't", "isn't", "wasn't", "aren't", "can't", 'cannot', "won't"]);

export interface Sentiment {
  label: 'positive' | 'negative' | 'neutral';
  /** -1 (negative) to 1 (positive). */
  score: number;
  /** How many words carried a polarity. */
  evidence: number;
}

export function sentimentOf(text: string): Sentiment {
  const words = text.toLowerCase().match(/[a-z][a-z']*/g) ?? [];
  let sum = 0;
  let evidence = 0;
  let flip = 0;
  for (const w of words) {
    if (NEGATIONS.has(w)) {
      flip = 2;
      continue;
    }
    const polarity = POSITIVE.has(w) ? 1 : NEGATIVE.has(w) ? -1 : 0;
    if (polarity !== 0) {
      sum += flip > 0 ? -polarity : polarity;
      evidence++;
    }
    if (flip > 0) flip--;
  }
  const score = evidence === 0 ? 0 : sum / evidence;
  return { label: score > 0.2 ? 'positive' : score < -0.2 ? 'negative' : 'neutral', score, evidence };
}
