import t from 'tap';
import { roomKey, type DurableEvent } from '../../shared/domain/index.ts';
import { idAtTime } from '../../shared/ids/index.ts';
import { createSqliteStore } from '../../shared/store/index.ts';
import { makeMessage, makeRoom } from '../../shared/store/store.contract.ts';
import type { InboundStatus } from '../../shared/channels/index.ts';
import { sentAsRecordId, sentRecordKey } from './sender.ts';
import { statusTarget } from './status-target.ts';

const TENANT = 'acme';
const ROOM = 'fbm_6783245123456789';
const PERSON = 'messenger:6783245123456789';

t.test('status target - a receipt by the platform\'s id or by a watermark finds the reply it is about', async (t) => {
  const store = createSqliteStore({ file: ':memory:' });
  t.teardown(() => store.close());
  await store.createRoom(makeRoom(ROOM, { tenant: TENANT, createdBy: PERSON }), []);
  // the sqlite store sweeps records expired by the wall clock: the story happens a minute ago
  const t0 = Date.now() - 60_000;
  // the person writes, an agent answers twice, the person writes again, the agent's third reply is not sent yet
  const rows: Array<[string, string, number]> = [[PERSON, 'hi', t0], ['agent', 'reply one', t0 + 1000], ['agent', 'reply two', t0 + 2000], [PERSON, 'thanks', t0 + 3000], ['agent', 'reply three', t0 + 4000]];
  const ids = rows.map(([, , at]) => idAtTime(at));
  const events: DurableEvent[] = rows.map(([authorId, content], i) => ({
    kind: 'message.created', id: ids[i]!, at: rows[i]![2], roomId: roomKey(TENANT, ROOM), message: makeMessage(ROOM, ids[i]!, { authorId, content }),
  }));
  await store.applyEvents(events);
  const sent = async (messageId: string, pmid: string) => store.markNotified(TENANT, sentRecordKey(ROOM), [messageId, sentAsRecordId(messageId, pmid)], t0 + 86_400_000);
  await sent(ids[1]!, 'm_OUT1');
  await sent(ids[2]!, 'm_OUT2');
  const base: InboundStatus = { kind: 'status', externalUserId: '6783245123456789', status: 'delivered', at: t0 };
  const target = (s: Partial<InboundStatus>) => statusTarget({ store }, TENANT, 'messenger', ROOM, { ...base, ...s }, t0 + 5000);

  t.equal(await target({ platformMessageId: 'm_OUT2' }), ids[2], 'by mid');
  t.equal(await target({ platformMessageId: 'm_OUT1' }), ids[1]);
  t.equal(await target({ platformMessageId: 'm_UNKNOWN' }), undefined, 'a mid no reply went out as');
  t.equal(await target({ upTo: t0 + 2500, status: 'read' }), ids[2], 'the newest sent reply at or before the watermark');
  t.equal(await target({ upTo: t0 + 1500, status: 'read' }), ids[1]);
  t.equal(await target({ upTo: t0 + 9000, status: 'read' }), ids[2], 'a reply not sent yet is not read');
  t.equal(await target({ upTo: t0 + 500, status: 'read' }), undefined, 'before any reply');
  t.equal(await target({ messageId: '42', platformMessageId: 'm_OUT1' }), '42', 'a status that names its message keeps it');
  t.equal(await target({}), undefined, 'neither id nor watermark');
});
