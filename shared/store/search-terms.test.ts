import t from 'tap';
import { contentTerms, queryTerms, MAX_QUERY_TERMS, MAX_TERM_LENGTH } from './search-terms.ts';

/** The general fold (what contentTerms does for non-ASCII text), as the reference for the ASCII path. */
function foldedWords(text: string): string[] {
  const found = text.toLowerCase().normalize('NFKD').replace(/\p{M}+/gu, '').match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [];
  return [...new Set(found.map((w) => Array.from(w).slice(0, MAX_TERM_LENGTH).join('')))];
}

t.test('search terms - ASCII content gives the same terms as the general fold', async (t) => {
  // A seeded generator: every ASCII character class (letters of both cases, digits, punctuation,
  // controls, space) in runs long and short, including words over MAX_TERM_LENGTH.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const mismatches: string[] = [];
  for (let i = 0; i < 2000; i++) {
    let text = '';
    const len = Math.floor(rnd() * 200);
    for (let j = 0; j < len; j++) text += String.fromCharCode(Math.floor(rnd() * 128));
    if (i % 50 === 0) text += ' ' + 'Ab9'.repeat(40);
    if (JSON.stringify(contentTerms(text)) !== JSON.stringify(foldedWords(text))) mismatches.push(text);
  }
  t.same(mismatches, [], '2000 random ASCII texts: same terms on both paths');
});

t.test('search terms - case, accents and compatibility forms fold; long words are cut', async (t) => {
  t.same(contentTerms('Hello, WORLD! hello'), ['hello', 'world']);
  t.same(contentTerms('Café ﬁne Ǽ'), ['cafe', 'fine', 'æ']);
  t.same(contentTerms('x'.repeat(MAX_TERM_LENGTH + 10)), ['x'.repeat(MAX_TERM_LENGTH)]);
  t.same(contentTerms('é'.repeat(MAX_TERM_LENGTH + 10)), ['e'.repeat(MAX_TERM_LENGTH)]);
  t.same(contentTerms('... !!!'), []);
  t.equal(queryTerms(Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')).length, MAX_QUERY_TERMS);
});
