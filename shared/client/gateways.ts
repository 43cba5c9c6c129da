/** Why the client is choosing where to connect. */
export type GatewayChoice =
  /** The first connection. */
  | 'connect'
  /** The gateway said it is draining (a `reconnect` frame, or a close with 1001): go elsewhere. */
  | 'draining'
  /** The last attempt never opened: that gateway may be gone. */
  | 'failed'
  /** An open connection was lost otherwise (network, idle timeout): its gateway is likely fine. */
  | 'lost';

/**
 * Asked before every connection attempt for the gateway's HTTP base URL (the WebSocket is `/chat`
 * on it, SSE and long-poll `/v1/chat/stream` and `/v1/chat/poll`). `previous` is where the last
 * attempt went. May be async (a service-discovery lookup).
 */
export type GatewayProvider = (ctx: { reason: GatewayChoice; previous: string | undefined }) => string | Promise<string>;

/**
 * Where the realtime connection goes. With a list: the first gateway to begin with, and the next
 * one (round robin) after a drain or an attempt that never opened; a connection lost otherwise
 * comes back to the same gateway. With a provider: whatever it says, every time. Without either:
 * the client's `url`.
 */
export class Gateways {
  private index = 0;
  private current: string | undefined;

  constructor(private readonly fallbackUrl: string, private readonly source: readonly string[] | GatewayProvider | undefined) {
    if (Array.isArray(source) && source.length === 0) throw new TypeError('gateways: give at least one URL, or leave it out');
  }

  /** The base URL for the next connection attempt. */
  async next(reason: GatewayChoice): Promise<string> {
    const s = this.source;
    if (s === undefined) return this.fallbackUrl;
    if (typeof s === 'function') {
      this.current = trimSlash(await s({ reason, previous: this.current }));
      return this.current;
    }
    const list = s as readonly string[];
    if (this.current !== undefined && (reason === 'draining' || reason === 'failed')) this.index = (this.index + 1) % list.length;
    this.current = trimSlash(list[this.index]!);
    return this.current;
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
