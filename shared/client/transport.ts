import type { ServerFrame } from '../protocol/frames.ts';
import type { ChatClientError } from './errors.ts';
import type { Request } from './rest-commands.ts';

export type TransportKind = 'websocket' | 'sse' | 'poll';

export interface CloseInfo {
  code: number;
  reason: string;
  /** Whether the transport got as far as open; a failure before it counts toward falling back. */
  opened: boolean;
  /** Set when the server refused with an error (an HTTP status the transport could read). */
  error?: ChatClientError;
}

export interface TransportHandlers {
  onOpen(): void;
  onFrame(frame: ServerFrame): void;
  /** Once, when the transport ends by itself (not after `close()`). */
  onClose(info: CloseInfo): void;
  /** The server's own resume position (SSE event ids, `*:<messageId>`), when the transport carries one. */
  onPosition?(id: string): void;
}

/** One connection attempt. Requests over a fallback transport go over REST and come back as ack/error frames. */
export interface Transport {
  readonly kind: TransportKind;
  send(request: Request): void;
  close(code?: number, reason?: string): void;
}

/** The part of the WHATWG WebSocket the client uses (browsers' and `ws`'s both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The part of EventSource the client uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: string; lastEventId?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;
