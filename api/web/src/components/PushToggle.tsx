import { useEffect, useState } from 'preact/hooks';
import { disablePush, enablePush, pushState, type PushState } from '../push.ts';

const LABELS: Record<PushState, string> = {
  unsupported: '', unavailable: '', off: 'Notify me when offline', on: 'Offline notifications on · turn off', blocked: 'Notifications blocked by the browser',
};

/** The opt-in for Web Push: hidden where the browser or the server has none. */
export function PushToggle({ token }: { token: string }) {
  const [state, setState] = useState<PushState | 'working' | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    pushState(token).then(setState, () => setState('unavailable'));
  }, [token]);
  if (state === undefined || state === 'unsupported' || state === 'unavailable') return null;
  const toggle = async () => {
    const from = state;
    setState('working');
    setError('');
    try {
      setState(from === 'on' ? await disablePush(token) : await enablePush(token));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setState(from);
    }
  };
  return (
    <div class="push-toggle">
      <button class="link" data-testid="push-toggle" data-state={state} disabled={state === 'working' || state === 'blocked'} onClick={() => void toggle()}>
        {state === 'working' ? 'Working…' : LABELS[state]}
      </button>
      {error && <div class="muted small" data-testid="push-error">{error}</div>}
    </div>
  );
}
