/** One Server-Sent Event: its data lines joined, and its id when it had one. */
export interface SseEvent {
  data: string;
  id: string | undefined;
  event: string;
}

/**
 * The text/event-stream format (WHATWG HTML, "Parsing an event stream"), for clients that read
 * the stream with fetch because they have no EventSource. Feed it decoded text in any chunking.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private id: string | undefined;
  private event = '';
  /** The last id seen, which a reconnect sends as Last-Event-ID. */
  lastEventId = '';

  constructor(private readonly onEvent: (ev: SseEvent) => void) {}

  push(text: string): void {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const nl = this.buffer.slice(start).search(/\r\n|\r|\n/);
      if (nl < 0) break;
      const end = start + nl;
      const line = this.buffer.slice(start, end);
      start = end + (this.buffer.startsWith('\r\n', end) ? 2 : 1);
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return; // comment (heartbeat)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'event') this.event = value;
  }

  private dispatch(): void {
    if (this.id !== undefined) this.lastEventId = this.id;
    if (this.data.length > 0) this.onEvent({ data: this.data.join('\n'), id: this.id, event: this.event || 'message' });
    this.data = [];
    this.id = undefined;
    this.event = '';
  }
}
