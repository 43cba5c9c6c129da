import t from 'tap';
import { TurnQueue } from './turn-queue.ts';

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

t.test('one waiter per event-loop turn, in the order they came', async (t) => {
  const q = new TurnQueue();
  const through: number[] = [];
  const all = [1, 2, 3].map((n) => q.turn().then(() => { through.push(n); }));
  t.equal(q.size, 3);
  t.same(through, [], 'nobody through in the turn they asked');
  await nextTurn();
  t.same(through, [1], 'the first, alone');
  await nextTurn();
  t.same(through, [1, 2]);
  await nextTurn();
  t.same(through, [1, 2, 3]);
  await Promise.all(all);
  t.equal(q.size, 0);
});

t.test('a queue that ran dry lets the next waiter through on its own', async (t) => {
  const q = new TurnQueue();
  await q.turn();
  await nextTurn();
  let through = false;
  const p = q.turn().then(() => { through = true; });
  await p;
  t.ok(through);
});
