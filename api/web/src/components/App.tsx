import { useEffect, useMemo, useState } from 'preact/hooks';
import { ChatModel } from '../model.ts';
import { loadSession, saveSession, type Session } from '../session.ts';
import { SignIn } from './SignIn.tsx';
import { Sidebar } from './Sidebar.tsx';
import { RoomView } from './RoomView.tsx';
import { SearchResults } from './SearchResults.tsx';
import { useModel } from './use-model.ts';
import type { Message } from '../../../../shared/client/index.ts';

export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  if (!session) return <SignIn onSignedIn={(s) => { saveSession(s); setSession(s); }} />;
  return <Chat key={session.token} session={session} onSignOut={() => { saveSession(undefined); setSession(undefined); }} />;
}

function Chat({ session, onSignOut }: { session: Session; onSignOut(): void }) {
  const model = useMemo(() => new ChatModel(session), [session]);
  const [search, setSearch] = useState<{ query: string; results: Message[] } | undefined>();
  useModel(model);
  useEffect(() => {
    model.start().catch((err: unknown) => model.flash(`Could not connect: ${err instanceof Error ? err.message : String(err)}`));
    return () => model.stop();
  }, [model]);

  const runSearch = async (query: string) => {
    try {
      const { messages } = await model.client.rest.search(query, { limit: 50 });
      setSearch({ query, results: messages });
    } catch (err) {
      model.flash(err instanceof Error ? err.message : String(err));
    }
  };

  return (
    <div class="layout">
      <Sidebar model={model} onSearch={runSearch} onOpen={(id) => { setSearch(undefined); void model.open(id); }} onSignOut={onSignOut} />
      <main class="main">
        {search
          ? <SearchResults model={model} query={search.query} results={search.results} onClose={() => setSearch(undefined)}
            onOpen={(id) => { setSearch(undefined); void model.open(id); }} />
          : model.current
            ? <RoomView key={model.current} model={model} roomId={model.current} />
            : <Welcome model={model} />}
      </main>
      {model.notice && <div class="toast" role="status" data-testid="notice">{model.notice}</div>}
    </div>
  );
}

function Welcome({ model }: { model: ChatModel }) {
  return (
    <div class="empty">
      <h2>Hello, {model.session.name}</h2>
      <p>Pick a room on the left, join one from <b>Discover</b>, or create one.</p>
    </div>
  );
}
