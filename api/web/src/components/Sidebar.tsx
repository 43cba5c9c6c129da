import { useState } from 'preact/hooks';
import type { ChatModel } from '../model.ts';
import { PushToggle } from './PushToggle.tsx';
import type { RoomListItem } from '../../../../shared/client/index.ts';

const TYPE_MARK: Record<RoomListItem['type'], string> = { public: '#', announcement: '📢', private: '🔒', group: '👥', direct: '@' };

export function Sidebar({ model, onOpen, onSearch, onSignOut }: {
  model: ChatModel; onOpen(roomId: string): void; onSearch(q: string): void; onSignOut(): void;
}) {
  const [query, setQuery] = useState('');
  const [creating, setCreating] = useState(false);
  const status = model.state === 'open' ? `connected · ${model.transport}` : model.state === 'reconnecting' ? 'reconnecting…' : model.state;

  return (
    <aside class="sidebar">
      <header class="me">
        <div>
          <div class="me-name" data-testid="me">{model.session.name}</div>
          <div class={`conn conn-${model.state}`} data-testid="connection">{status}</div>
        </div>
        <button class="link" onClick={onSignOut}>Sign out</button>
      </header>
      <PushToggle token={model.session.token} />

      <form class="search" role="search" onSubmit={(e) => { e.preventDefault(); if (query.trim()) onSearch(query.trim()); }}>
        <input type="search" placeholder="Search messages" value={query} data-testid="search-input"
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
      </form>

      <nav class="rooms" aria-label="Your rooms">
        <div class="section-title">
          <span>Rooms</span>
          <button class="link" onClick={() => setCreating(!creating)} data-testid="new-room">{creating ? 'Cancel' : '+ New'}</button>
        </div>
        {creating && <CreateRoom model={model} onDone={() => setCreating(false)} />}
        {model.rooms.length === 0 && <p class="muted">No rooms yet.</p>}
        {model.rooms.map((r) => (
          <button key={r.roomId} class={`room ${r.roomId === model.current ? 'active' : ''}`} onClick={() => onOpen(r.roomId)}
            data-testid="room" data-room-id={r.roomId} title={r.description || r.name}>
            <span class="mark">{TYPE_MARK[r.type]}</span>
            <span class="room-name">{r.name}</span>
            {r.unreadCount > 0 && <span class="badge" data-testid="unread">{r.unreadCount >= 100 ? '99+' : r.unreadCount}</span>}
          </button>
        ))}

        <div class="section-title"><span>Discover</span></div>
        {model.discover.length === 0 && <p class="muted">Nothing new to join.</p>}
        {model.discover.map((r) => (
          <div key={r.roomId} class="room discover" data-testid="discover-room" data-room-id={r.roomId}>
            <span class="mark">{TYPE_MARK[r.type]}</span>
            <span class="room-name">{r.name}</span>
            <span class="muted small">{r.memberCount}</span>
            <button class="small" onClick={() => void model.join(r.roomId)} data-testid="join">Join</button>
          </div>
        ))}
      </nav>
    </aside>
  );
}

function CreateRoom({ model, onDone }: { model: ChatModel; onDone(): void }) {
  const [name, setName] = useState('');
  const [type, setType] = useState<RoomListItem['type']>('public');
  const [members, setMembers] = useState('');
  const needsMembers = type === 'direct' || type === 'group' || type === 'private';
  return (
    <form class="create" data-testid="create-room" onSubmit={async (e) => {
      e.preventDefault();
      const ids = members.split(',').map((s) => s.trim()).filter(Boolean);
      await model.create(name.trim() || (type === 'direct' ? `${model.session.name} & ${ids[0] ?? ''}` : 'room'), type, ids);
      onDone();
    }}>
      <input name="room-name" placeholder={type === 'direct' ? 'Name (optional)' : 'Room name'} value={name} maxLength={100}
        required={type !== 'direct'} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      <select name="room-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as RoomListItem['type'])}>
        <option value="public">Public</option>
        <option value="announcement">Announcement</option>
        <option value="private">Private</option>
        <option value="group">Group</option>
        <option value="direct">Direct message</option>
      </select>
      {needsMembers && (
        <input name="room-members" placeholder={type === 'direct' ? 'User id, e.g. bob' : 'User ids, comma-separated'} value={members}
          required={type === 'direct'} onInput={(e) => setMembers((e.target as HTMLInputElement).value)} />
      )}
      <button type="submit">Create</button>
    </form>
  );
}
