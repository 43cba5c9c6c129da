import { useState } from 'preact/hooks';
import { describe } from '../model.ts';
import { signInByName, signInWithToken, type Session } from '../session.ts';

/** Sign in by name (development servers mint a token) or with a token (everywhere else). */
export function SignIn({ onSignedIn }: { onSignedIn(s: Session): void }) {
  const [mode, setMode] = useState<'name' | 'token'>('name');
  const [name, setName] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'token') return onSignedIn(await signInWithToken(token));
      const s = await signInByName(name);
      if (s === 'no-dev-tokens') {
        setMode('token');
        setError('This server does not hand out tokens by name. Paste a token to sign in.');
      } else {
        onSignedIn(s);
      }
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="signin">
      <form class="card" onSubmit={submit} data-testid="signin">
        <h1>chat-svc</h1>
        {mode === 'name' ? (
          <label>
            Your name
            <input autoFocus name="name" value={name} maxLength={64} placeholder="e.g. Alice" required
              onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
        ) : (
          <label>
            Token (JWT)
            <textarea name="token" value={token} rows={4} required placeholder="eyJhbGciOi..."
              onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} />
          </label>
        )}
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <button type="button" class="link" onClick={() => { setError(undefined); setMode(mode === 'name' ? 'token' : 'name'); }}>
          {mode === 'name' ? 'I have a token' : 'Sign in by name (development servers)'}
        </button>
      </form>
    </div>
  );
}
