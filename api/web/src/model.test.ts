import t from 'tap';

// The model runs in a browser; these are the few globals it touches at construction.
const g = globalThis as Record<string, unknown>;
g['location'] = { origin: 'http://127.0.0.1:9' };
g['window'] = { addEventListener() {}, removeEventListener() {} };
g['document'] = { visibilityState: 'visible' };

const { ChatModel } = await import('./model.ts');

t.test('web model - ai_response chunks build a live draft; the stored message or the done frame ends it; an error stays shown', async (t) => {
  const model = new ChatModel({ userId: 'alice', name: 'Alice', token: 'x' } as never);
  t.teardown(() => model.stop());
  const emit = (frame: Record<string, unknown>) => (model.client as unknown as { emitter: { emit(n: string, f: unknown): void } }).emitter.emit('ai_response', frame);
  let renders = 0;
  model.subscribe(() => { renders++; });

  emit({ type: 'ai_response', roomId: 'r1', requestId: 'q1', chunk: 'Queue ', done: false });
  emit({ type: 'ai_response', roomId: 'r1', requestId: 'q1', chunk: 'groups.', done: false });
  t.same(model.draftsIn('r1').map((d) => d.text), ['Queue groups.'], 'the pieces so far, in order');
  t.ok(renders >= 2, 'each piece re-renders');
  emit({ type: 'ai_response', roomId: 'r1', requestId: 'q1', chunk: '', done: true, messageId: '123' });
  t.same(model.draftsIn('r1'), [], 'done with the stored message: the draft gives way to the message');

  emit({ type: 'ai_response', roomId: 'r1', requestId: 'q2', chunk: 'half', done: false });
  emit({ type: 'ai_response', roomId: 'r1', requestId: 'q2', chunk: '', done: true, error: { code: 'unavailable', message: 'the AI answer broke off' } });
  t.match(model.draftsIn('r1'), [{ requestId: 'q2', text: 'half', error: 'the AI answer broke off' }], 'a failed answer shows why');
  t.same(model.draftsIn('r2'), [], 'other rooms see nothing');
});
