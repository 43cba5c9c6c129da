import type { SendOutcome } from './channel.ts';

/** Answers worth another try: rate limited, timed out, or the platform's own failure. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Retry-After in seconds (the only form platforms send), as ms; undefined when absent or unreadable. */
export function retryAfterHeader(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/**
 * One JSON POST to a platform. An answer is read as JSON when it is JSON (platforms explain their
 * errors in the body); a network failure or timeout is a retryable failure, never a throw.
 */
export async function postJson(
  url: string, headers: Record<string, string>, body: unknown, timeoutMs: number,
): Promise<PlatformAnswer | Extract<SendOutcome, { kind: 'failed' }>> {
  return post(url, { 'content-type': 'application/json', ...headers }, JSON.stringify(body), timeoutMs);
}

/** One `application/x-www-form-urlencoded` POST (Twilio's REST API); the answer as for postJson. A list of pairs may repeat a name (Twilio's `MediaUrl`). */
export async function postForm(
  url: string, headers: Record<string, string>, fields: Record<string, string> | Array<[string, string]>, timeoutMs: number,
): Promise<PlatformAnswer | Extract<SendOutcome, { kind: 'failed' }>> {
  return post(url, { 'content-type': 'application/x-www-form-urlencoded', ...headers }, new URLSearchParams(fields).toString(), timeoutMs);
}

export interface PlatformAnswer { status: number; json: unknown; retryAfterMs: number | undefined }

async function post(
  url: string, headers: Record<string, string>, body: string, timeoutMs: number,
): Promise<PlatformAnswer | Extract<SendOutcome, { kind: 'failed' }>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST', headers, body,
      signal: AbortSignal.timeout(timeoutMs), redirect: 'error',
    });
  } catch (err) {
    return { kind: 'failed', error: `no answer: ${err instanceof Error ? err.message : String(err)}`, retryable: true };
  }
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, retryAfterMs: retryAfterHeader(res.headers.get('retry-after')) };
}

/** A platform's error answer in a line, for logs and dead letters (bounded: bodies may be large). */
export function describeFailure(status: number, json: unknown): string {
  const text = json === undefined ? '' : JSON.stringify(json);
  return `HTTP ${status}${text ? `: ${text.slice(0, 300)}` : ''}`;
}
