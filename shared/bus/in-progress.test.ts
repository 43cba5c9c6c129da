import t from 'tap';
import { InProgress, type Holdable } from './in-progress.ts';

class Item implements Holdable {
  settled = false;
  workedAt: number[] = [];
  constructor(private readonly start: number) {}
  working(): void {
    this.workedAt.push(Date.now() - this.start);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('in progress - a batch settled within half an ack wait sends nothing', async (t) => {
  const start = Date.now();
  const batch = new InProgress<Item>(200);
  const items = [new Item(start), new Item(start)];
  for (const i of items) batch.hold(i);
  await sleep(30);
  for (const i of items) i.settled = true;
  batch.release();
  await sleep(300);
  t.same(items.map((i) => i.workedAt), [[], []]);
});

t.test('in progress - unsettled deliveries are refreshed every half ack wait until released', async (t) => {
  const start = Date.now();
  const batch = new InProgress<Item>(200);
  const a = new Item(start);
  const b = new Item(start);
  batch.hold(a);
  await sleep(40);
  batch.hold(b);
  await sleep(250);
  t.ok(a.workedAt.length >= 2, `refreshed twice by 290 ms (${a.workedAt.join(',')})`);
  t.ok(a.workedAt[0]! >= 90, `first refresh half an ack wait after the first delivery arrived (${a.workedAt[0]} ms)`);
  t.same(b.workedAt.length, a.workedAt.length, 'a delivery that joined later rides on the same timer');
  a.settled = true;
  const aCount = a.workedAt.length;
  const bBefore = b.workedAt.length;
  await sleep(150);
  t.ok(b.workedAt.length > bBefore, 'the unsettled one is still kept');
  t.equal(a.workedAt.length, aCount, 'a settled delivery is left alone');
  batch.release();
  const bCount = b.workedAt.length;
  await sleep(250);
  t.equal(b.workedAt.length, bCount, 'nothing after release');
});

t.test('in progress - the timer stops by itself once everything is settled', async (t) => {
  const start = Date.now();
  const batch = new InProgress<Item>(100);
  const a = new Item(start);
  batch.hold(a);
  await sleep(70);
  a.settled = true;
  await sleep(200);
  t.same(a.workedAt.length, 1, 'one refresh while unsettled, none after');
  // a delivery held after the timer stopped starts it again
  const b = new Item(Date.now());
  batch.hold(b);
  await sleep(80);
  t.equal(b.workedAt.length, 1);
  batch.release();
});
