/** The few REST calls the bench makes against chat-svc for setup and checks. */
export async function postMessage(base: string, token: string, roomId: string, content: string): Promise<string> {
  const res = await fetch(`${base}/v1/chat/rooms/${encodeURIComponent(roomId)}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content, type: 'text' }),
  });
  const body = (await res.json()) as { success?: boolean; data?: { message?: { messageId?: string } }; error?: unknown };
  const id = body.data?.message?.messageId;
  if (!res.ok || typeof id !== 'string') throw new Error(`sending to ${roomId}: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return id;
}

export async function historyLength(base: string, token: string, roomId: string, limit: number): Promise<number> {
  const res = await fetch(`${base}/v1/chat/rooms/${encodeURIComponent(roomId)}/messages?limit=${limit}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { data?: unknown };
  if (!res.ok) throw new Error(`history of ${roomId}: HTTP ${res.status}`);
  const data = body.data as { messages?: unknown[] } | unknown[] | undefined;
  return Array.isArray(data) ? data.length : data?.messages?.length ?? 0;
}

/** Sum of a Prometheus counter over all its label sets, from a /metrics page. */
export async function readCounter(metricsUrl: string, name: string): Promise<number> {
  const res = await fetch(metricsUrl);
  const text = await res.text();
  if (!res.ok) throw new Error(`${metricsUrl}: HTTP ${res.status}`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
