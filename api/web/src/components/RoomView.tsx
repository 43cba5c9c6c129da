import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Attachment, ChatModel } from '../model.ts';
import type { Message } from '../../../../shared/client/index.ts';

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];
/** Typing starts are re-sent this often while the user keeps typing (the server's indicator expires). */
const TYPING_REPEAT_MS = 2000;
const TYPING_IDLE_MS = 2500;

export function RoomView({ model, roomId }: { model: ChatModel; roomId: string }) {
  const room = model.room(roomId);
  const timeline = model.timelines.get(roomId);
  const messages = timeline?.messages ?? [];
  const [replyTo, setReplyTo] = useState<Message | undefined>();
  const [editing, setEditing] = useState<Message | undefined>();
  const list = useRef<HTMLDivElement>(null);
  const pinnedToBottom = useRef(true);
  const heightBefore = useRef<number | undefined>();
  const firstId = messages[0]?.messageId;
  const lastId = messages.at(-1)?.messageId;

  // Older pages are prepended: keep what the reader looks at in place.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (heightBefore.current !== undefined) {
      el.scrollTop += el.scrollHeight - heightBefore.current;
      heightBefore.current = undefined;
    }
  }, [firstId]);
  useLayoutEffect(() => {
    const el = list.current;
    if (el && pinnedToBottom.current) el.scrollTop = el.scrollHeight;
  }, [lastId, messages.length, roomId]);

  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    pinnedToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 80 && timeline?.hasMore && !timeline.loading) {
      heightBefore.current = el.scrollHeight;
      void model.loadOlder(roomId);
    }
  };

  const typing = model.typingIn(roomId);
  const receipt = room?.type === 'direct' ? model.receiptFor(roomId) : undefined;
  const byId = new Map(messages.map((m) => [m.messageId, m]));
  const members = model.members.get(roomId) ?? [];
  const drafts = model.draftsIn(roomId);

  return (
    <div class="room-layout">
      <section class="room-view" data-testid="room-view" data-room-id={roomId}>
        <header class="room-header">
          <div>
            <h2 data-testid="room-title">{room?.name ?? roomId}</h2>
            <div class="muted small">{room ? `${room.type} · ${room.memberCount} member${room.memberCount === 1 ? '' : 's'}` : ''}{room?.description ? ` · ${room.description}` : ''}</div>
          </div>
          <div>
            <AskAi model={model} roomId={roomId} />
            {room && room.type !== 'direct' && <button class="link" onClick={() => void model.leave(roomId)}>Leave</button>}
          </div>
        </header>
        {model.ask && (
          <div class="ask-panel" data-testid="ask-panel">
            <div class="muted small">You asked: {model.ask.question}</div>
            <div class="content" data-testid="ask-answer" aria-live="polite">{model.ask.answer || (model.ask.busy ? '…' : '')}</div>
            {model.ask.error && <div class="muted small" data-testid="ask-error">{model.ask.error}</div>}
            <button type="button" class="link" onClick={() => model.closeAsk()}>Close</button>
          </div>
        )}

        <div class="messages" ref={list} onScroll={onScroll} data-testid="messages">
          {timeline?.loading && <p class="muted center small">Loading…</p>}
          {timeline?.loaded && !timeline.hasMore && <p class="muted center small">This is the start of {room?.name ?? 'the room'}.</p>}
          {messages.map((m, i) => (
            <MessageItem key={m.messageId} m={m} model={model} prev={messages[i - 1]} replied={m.replyTo ? byId.get(m.replyTo) : undefined}
              receipt={receipt?.messageId === m.messageId ? receipt.label : undefined}
              onReply={() => { setEditing(undefined); setReplyTo(m); }} onEdit={() => { setReplyTo(undefined); setEditing(m); }} />
          ))}
          {drafts.map((d) => (
            <div key={d.requestId} class="msg ai-draft" data-testid="ai-draft" data-request-id={d.requestId}>
              <div class="meta"><span class="author">AI Assistant</span><span class="muted small">{d.error ? 'failed' : 'writing…'}</span></div>
              <div class="content" data-testid="ai-draft-content">{d.text}</div>
              {d.error && <div class="muted small" data-testid="ai-draft-error">The answer broke off: {d.error}</div>}
            </div>
          ))}
        </div>

        <div class="typing" data-testid="typing" aria-live="polite">
          {typing.length > 0 && `${typing.join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…`}
        </div>

        <Composer model={model} roomId={roomId} replyTo={replyTo} editing={editing}
          onDone={() => { setReplyTo(undefined); setEditing(undefined); pinnedToBottom.current = true; }} />
      </section>

      <aside class="members" data-testid="members">
        <div class="section-title"><span>Members</span></div>
        {members.map((m) => {
          const status = model.presence.get(m.userId) ?? (m.isOnline ? 'online' : 'offline');
          return (
            <div class="member" key={m.userId} data-testid="member" data-user-id={m.userId}>
              <span class={`dot ${status}`} title={status} data-testid="presence" data-status={status} />
              <span>{m.displayName}</span>
              {m.role !== 'member' && <span class="muted small">{m.role}</span>}
            </div>
          );
        })}
      </aside>
    </div>
  );
}

/** "Ask AI": a private question about this room; the answer streams into the panel above the messages. */
function AskAi({ model, roomId }: { model: ChatModel; roomId: string }) {
  const [open, setOpen] = useState(false);
  const [question, setQuestion] = useState('');
  if (!open) return <button class="link" data-testid="ask-ai" onClick={() => setOpen(true)}>Ask AI</button>;
  const submit = () => {
    const q = question.trim();
    if (!q) return;
    setQuestion('');
    setOpen(false);
    void model.askAi(q, roomId);
  };
  return (
    <form class="ask-form" onSubmit={(e) => { e.preventDefault(); submit(); }} data-testid="ask-form">
      <input value={question} placeholder="Ask the assistant about this room" data-testid="ask-input" maxLength={4000}
        onInput={(e) => setQuestion((e.target as HTMLInputElement).value)} />
      <button type="submit" data-testid="ask-submit">Ask</button>
      <button type="button" class="link" onClick={() => setOpen(false)}>Cancel</button>
    </form>
  );
}

function MessageItem({ m, model, prev, replied, receipt, onReply, onEdit }: {
  m: Message; model: ChatModel; prev: Message | undefined; replied: Message | undefined; receipt: string | undefined;
  onReply(): void; onEdit(): void;
}) {
  const mine = m.authorId === model.session.userId;
  const grouped = prev !== undefined && prev.authorId === m.authorId && Date.parse(m.timestamp) - Date.parse(prev.timestamp) < 5 * 60_000 && !m.replyTo;
  const time = new Date(m.timestamp);
  return (
    <div class={`msg ${mine ? 'mine' : ''} ${grouped ? 'grouped' : ''}`} data-testid="message" data-message-id={m.messageId} data-author={m.authorId}>
      {!grouped && (
        <div class="meta">
          <span class={`dot ${model.presence.get(m.authorId) ?? 'offline'}`} />
          <span class="author">{m.authorName}</span>
          <time dateTime={m.timestamp} title={time.toLocaleString()}>{time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</time>
        </div>
      )}
      {m.replyTo && (
        <div class="reply-preview" data-testid="reply-preview">
          ↪ {replied ? <><b>{replied.authorName}</b>: {replied.isDeleted ? 'deleted message' : replied.content.slice(0, 120)}</> : 'an earlier message'}
        </div>
      )}
      {m.isDeleted
        ? <div class="content deleted" data-testid="message-content"><em>message deleted</em></div>
        : <div class="content" data-testid="message-content">{m.content}{m.isEdited && <span class="muted small"> (edited)</span>}</div>}
      {!m.isDeleted && m.attachments.length > 0 && (
        <div class="attachments">{m.attachments.map((a) => <AttachmentView key={a.id} a={a} model={model} />)}</div>
      )}
      {Object.keys(m.reactions).length > 0 && (
        <div class="reactions">
          {Object.entries(m.reactions).map(([emoji, users]) => (
            <button key={emoji} class={`reaction ${users.includes(model.session.userId) ? 'mine' : ''}`} data-testid="reaction" data-emoji={emoji}
              title={users.join(', ')} onClick={() => void model.toggleReaction(m, emoji)}>
              {emoji} <span>{users.length}</span>
            </button>
          ))}
        </div>
      )}
      {receipt && <div class="receipt muted small" data-testid="receipt">{receipt}</div>}
      {!m.isDeleted && (
        <div class="actions">
          {QUICK_REACTIONS.map((e) => (
            <button key={e} title={`React ${e}`} data-testid={`react-${e}`} onClick={() => void model.toggleReaction(m, e)}>{e}</button>
          ))}
          <button onClick={onReply} data-testid="reply">Reply</button>
          {mine && <button onClick={onEdit} data-testid="edit">Edit</button>}
          {mine && <button onClick={() => { if (confirm('Delete this message?')) void model.remove(m.roomId, m.messageId); }} data-testid="delete">Delete</button>}
        </div>
      )}
    </div>
  );
}

/** Images shown inline (their thumbnail, a link to the whole image), anything else a download link. */
function AttachmentView({ a, model }: { a: Attachment; model: ChatModel }) {
  const href = model.fileUrl(a.url);
  const name = a.fileName ?? 'file';
  if (!href) return <span class="attachment muted small" data-testid="attachment-elsewhere">📎 {name}</span>;
  if (a.type === 'image') {
    return (
      <a class="attachment image" href={href} target="_blank" rel="noopener noreferrer" data-testid="attachment-image">
        <img src={model.fileUrl(a.thumbnailUrl) ?? href} alt={name} loading="lazy" />
      </a>
    );
  }
  return (
    <a class="attachment file" href={href} download={name} data-testid="attachment-file">
      📎 {name}{a.fileSize !== undefined && <span class="muted small"> ({formatSize(a.fileSize)})</span>}
    </a>
  );
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function Composer({ model, roomId, replyTo, editing, onDone }: {
  model: ChatModel; roomId: string; replyTo: Message | undefined; editing: Message | undefined; onDone(): void;
}) {
  const [text, setText] = useState('');
  const [files, setFiles] = useState<Attachment[]>([]);
  const [uploading, setUploading] = useState(0);
  const picker = useRef<HTMLInputElement>(null);
  const typingSentAt = useRef(0);
  const idle = useRef<ReturnType<typeof setTimeout> | undefined>();
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (editing) setText(editing.content);
    input.current?.focus();
  }, [editing, replyTo]);
  useEffect(() => () => { clearTimeout(idle.current); if (typingSentAt.current) model.client.typing(roomId, false); }, [roomId]);

  const stopTyping = () => {
    clearTimeout(idle.current);
    if (typingSentAt.current) model.client.typing(roomId, false);
    typingSentAt.current = 0;
  };
  const onInput = (value: string) => {
    setText(value);
    if (editing) return;
    const now = Date.now();
    if (value && now - typingSentAt.current > TYPING_REPEAT_MS) {
      model.client.typing(roomId, true);
      typingSentAt.current = now;
    }
    clearTimeout(idle.current);
    idle.current = setTimeout(stopTyping, TYPING_IDLE_MS);
    if (!value) stopTyping();
  };
  const attach = async (chosen: FileList | null) => {
    const list = [...(chosen ?? [])];
    if (picker.current) picker.current.value = '';
    setUploading((n) => n + list.length);
    for (const file of list) {
      const uploaded = await model.upload(roomId, file);
      setUploading((n) => n - 1);
      if (uploaded) setFiles((f) => [...f, uploaded]);
    }
  };
  const submit = async () => {
    const content = text.trim();
    if (uploading > 0) return;
    if (!content && (editing || files.length === 0)) return;
    const attachments = files;
    setText('');
    setFiles([]);
    clearTimeout(idle.current);
    typingSentAt.current = 0;
    if (editing) await model.edit(roomId, editing.messageId, content);
    else await model.send(roomId, content, replyTo?.messageId, attachments);
    onDone();
  };

  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); void submit(); }} data-testid="composer">
      {(replyTo || editing) && (
        <div class="composer-context">
          {editing ? 'Editing your message' : <>Replying to <b>{replyTo!.authorName}</b>: {replyTo!.content.slice(0, 80)}</>}
          <button type="button" class="link" onClick={() => { setText(''); onDone(); }}>Cancel</button>
        </div>
      )}
      {(files.length > 0 || uploading > 0) && (
        <div class="composer-files" data-testid="composer-files">
          {files.map((f) => (
            <span key={f.id} class="chip" data-testid="pending-attachment">
              📎 {f.fileName}
              <button type="button" class="link" title="Remove" onClick={() => setFiles((all) => all.filter((x) => x.id !== f.id))}>×</button>
            </span>
          ))}
          {uploading > 0 && <span class="muted small" data-testid="uploading">uploading {uploading}…</span>}
        </div>
      )}
      <div class="composer-row">
        {!editing && (
          <>
            <input ref={picker} type="file" multiple hidden data-testid="file-input" onChange={(e) => void attach((e.target as HTMLInputElement).files)} />
            <button type="button" title="Attach files" data-testid="attach" onClick={() => picker.current?.click()}>📎</button>
          </>
        )}
        <textarea ref={input} rows={1} value={text} placeholder="Write a message" data-testid="composer-input" maxLength={5000}
          onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); void submit(); }
            if (e.key === 'Escape') { setText(''); onDone(); }
          }} />
        <button type="submit" data-testid="send" disabled={uploading > 0}>{editing ? 'Save' : 'Send'}</button>
      </div>
    </form>
  );
}
