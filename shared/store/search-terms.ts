/**
 * The words message search matches on, the same for every store: a query finds a message when
 * each of the query's words is a whole word of the content, ignoring case and accents ("Café"
 * is found by "cafe"). Stores index `contentTerms(content)` and look up `queryTerms(text)`;
 * because both come from here, SQLite (FTS5) and Cassandra (SAI on a set of terms) find exactly
 * the same messages.
 */

/** Words of a query beyond this are ignored: a long query would only cost time. */
export const MAX_QUERY_TERMS = 16;
/**
 * Longer words are cut to this many characters on both sides (index and query), which keeps index
 * entries small and still matches the same word.
 */
export const MAX_TERM_LENGTH = 64;

const WORD = /[\p{L}\p{N}\p{Co}]+/gu;
const MARKS = /\p{M}+/gu;
/**
 * Most content is plain ASCII, for which folding is only lower-casing (NFKD changes no ASCII
 * character, and ASCII has no combining marks) and a word is a run of letters and digits: the
 * same terms at a fraction of the cost, on the persister's path for every message.
 */
const ASCII = /^[\x00-\x7f]*$/;
const ASCII_WORD = /[a-z0-9]+/g;

/** Lower case, then compatibility decomposition with the combining marks dropped: 'Ǽ' -> 'æ', 'ﬁ' -> 'fi'. */
function fold(text: string): string {
  return text.toLowerCase().normalize('NFKD').replace(MARKS, '');
}

function words(text: string, max: number): string[] {
  const ascii = ASCII.test(text);
  const found = ascii ? text.toLowerCase().match(ASCII_WORD) : fold(text).match(WORD);
  if (found === null) return [];
  const out = new Set<string>();
  for (const w of found) {
    if (w.length <= MAX_TERM_LENGTH) out.add(w);
    else out.add(ascii ? w.slice(0, MAX_TERM_LENGTH) : Array.from(w).slice(0, MAX_TERM_LENGTH).join(''));
    if (out.size >= max) break;
  }
  return [...out];
}

/** The distinct words of a message's content, as indexed. */
export function contentTerms(content: string): string[] {
  return words(content, Number.POSITIVE_INFINITY);
}

/** The distinct words of a search query (at most MAX_QUERY_TERMS); empty when it has none. */
export function queryTerms(text: string): string[] {
  return words(text, MAX_QUERY_TERMS);
}
