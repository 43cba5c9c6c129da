/**
 * Web Push opt-in. Nothing here runs until the user asks for notifications: the permission prompt,
 * the service worker and the subscription all follow their click, never the page's load.
 */
export type PushState = 'unsupported' | 'unavailable' | 'off' | 'on' | 'blocked';

const SW_URL = '/sw.js';

function supported(): boolean {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** Where the user stands, asking nothing: no prompt, no registration. */
export async function pushState(token: string): Promise<PushState> {
  if (!supported()) return 'unsupported';
  if ((await vapidKey(token)) === undefined) return 'unavailable';
  if (Notification.permission === 'denied') return 'blocked';
  const registration = await navigator.serviceWorker.getRegistration('/');
  const subscription = await registration?.pushManager.getSubscription();
  return subscription ? 'on' : 'off';
}

async function vapidKey(token: string): Promise<string | undefined> {
  const res = await fetch('/v1/chat/push/vapid-public-key', { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) return undefined;
  return ((await res.json()) as { data: { publicKey: string } }).data.publicKey;
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** The user opted in (a click): ask permission, register the worker, subscribe, tell the server. */
export async function enablePush(token: string): Promise<PushState> {
  if (!supported()) return 'unsupported';
  const key = await vapidKey(token);
  if (key === undefined) return 'unavailable';
  if (await Notification.requestPermission() !== 'granted') return 'blocked';
  const registration = await navigator.serviceWorker.register(SW_URL, { scope: '/' });
  await navigator.serviceWorker.ready;
  const subscription = await registration.pushManager.getSubscription()
    ?? await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  const res = await fetch('/v1/chat/push/subscriptions', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(subscription.toJSON()),
  });
  if (!res.ok) {
    await subscription.unsubscribe();
    throw new Error(`the server refused the subscription (${res.status})`);
  }
  return 'on';
}

/** Stops notifications for this browser: unsubscribes and tells the server. */
export async function disablePush(token: string): Promise<PushState> {
  const registration = await navigator.serviceWorker.getRegistration('/');
  const subscription = await registration?.pushManager.getSubscription();
  if (subscription) {
    await fetch(`/v1/chat/push/subscriptions?endpoint=${encodeURIComponent(subscription.endpoint)}`, {
      method: 'DELETE', headers: { authorization: `Bearer ${token}` },
    });
    await subscription.unsubscribe();
  }
  return 'off';
}
