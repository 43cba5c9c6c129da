import type { ChatModel } from '../model.ts';
import type { Message } from '../../../../shared/client/index.ts';

export function SearchResults({ model, query, results, onClose, onOpen }: {
  model: ChatModel; query: string; results: Message[]; onClose(): void; onOpen(roomId: string): void;
}) {
  return (
    <section class="room-view" data-testid="search-results">
      <header class="room-header">
        <div><h2>Search: “{query}”</h2><div class="muted small">{results.length} result{results.length === 1 ? '' : 's'}</div></div>
        <button class="link" onClick={onClose}>Close</button>
      </header>
      <div class="messages">
        {results.length === 0 && <p class="muted center">No messages match.</p>}
        {results.map((m) => (
          <button key={m.messageId} class="result" onClick={() => onOpen(m.roomId)} data-testid="search-result">
            <div class="meta"><b>{m.authorName}</b> in {model.room(m.roomId)?.name ?? m.roomId} · {new Date(m.timestamp).toLocaleString()}</div>
            <div class="content">{m.content}</div>
          </button>
        ))}
      </div>
    </section>
  );
}
