import t from 'tap';
import { createSqliteStore } from '../../shared/store/index.ts';
import { makeMember, makeRoom } from '../../shared/store/store.contract.ts';
import { RoomCache } from './room-cache.ts';

t.test('room cache - a room is read once a minute; a missing room is asked again', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  t.teardown(() => store.close());
  let reads = 0;
  const counting = { ...store, getRoom: (key: string) => { reads++; return store.getRoom(key); } };
  const cache = new RoomCache(counting);
  t.equal(await cache.get('later', 0), undefined);
  await store.createRoom(makeRoom('later', { name: 'Later' }), [makeMember('later', 'u1', { role: 'owner' })]);
  t.equal((await cache.get('later', 1))?.name, 'Later', 'not remembered as missing');
  t.equal((await cache.get('later', 59_000))?.name, 'Later');
  t.equal(reads, 2, 'the second look came from memory');
  await store.updateRoom({ ...(await store.getRoom('later'))!, name: 'Renamed' });
  t.equal((await cache.get('later', 61_002))?.name, 'Renamed', 'read again after a minute');
  t.equal(reads, 3);
});
