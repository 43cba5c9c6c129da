/**
 * Ids go into keys escaped, so that `a:b`+`c` and `a`+`b:c` are different keys and a `}` in an id
 * cannot end a hash tag early.
 */
export function escapeKeyPart(id: string): string {
  return id.replace(/[%:{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
