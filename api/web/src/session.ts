import { ChatClientError, ChatRest } from '../../../shared/client/index.ts';

/** Who is signed in, kept per tab (sessionStorage) so two tabs can be two people. */
export interface Session {
  token: string;
  userId: string;
  name: string;
}

const KEY = 'chat-svc.session';

export function loadSession(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : undefined;
  } catch {
    return undefined; // storage disabled or garbage: sign in again
  }
}

export function saveSession(s: Session | undefined): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/** A user id from a display name: lowercase letters, digits, `-`, `_` and `.`. */
export function userIdFor(name: string): string {
  return name.trim().toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/\s+/g, '-').replace(/[^a-z0-9_.-]/g, '').slice(0, 64);
}

/**
 * Development servers mint a token for a name (`POST /v1/dev/token`); anywhere else that route is
 * absent (404) and the page asks for a token instead.
 */
export async function signInByName(name: string): Promise<Session | 'no-dev-tokens'> {
  const userId = userIdFor(name);
  if (!userId) throw new ChatClientError('bad_request', 'Pick a name with at least one letter or digit.');
  const res = await fetch('/v1/dev/token', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: userId, name: name.trim() }),
  });
  if (res.status === 404) return 'no-dev-tokens';
  const body = (await res.json()) as { success: boolean; data?: { token: string; userId: string; name: string }; error?: { code: string; message: string } };
  if (!body.success || !body.data) throw new ChatClientError(body.error?.code ?? 'internal', body.error?.message ?? `HTTP ${res.status}`);
  return { token: body.data.token, userId: body.data.userId, name: body.data.name };
}

export async function signInWithToken(token: string): Promise<Session> {
  const me = await new ChatRest({ baseUrl: location.origin, token: token.trim() }).me();
  return { token: token.trim(), userId: me.userId, name: me.name };
}
