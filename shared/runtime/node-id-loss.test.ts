import t from 'tap';
import { ChatError } from '../protocol/errors.ts';
import type { NodeIdLease } from '../ids/node-id-lease.ts';
import { registry } from '../telemetry/metrics.ts';
import { silentLogger } from '../telemetry/logger.ts';
import { exitOnLostNodeId, EXIT_NODE_ID_LOST } from './shutdown.ts';

t.test('node id - a lost lease is counted in chat_node_id_lease_lost_total before the process exits with 75', async (t) => {
  let lose!: (err: ChatError) => void;
  const lease: NodeIdLease = {
    kind: 'nats-kv', nodeId: 5, valid: () => true,
    lost: new Promise<ChatError>((r) => { lose = r; }),
    release: async () => {},
  };
  const exits: Array<number | undefined> = [];
  const realExit = process.exit;
  process.exit = ((code?: number) => { exits.push(code); }) as typeof process.exit;
  t.teardown(() => { process.exit = realExit; });
  const count = async () => (await registry.getSingleMetric('chat_node_id_lease_lost_total')!.get()).values[0]?.value ?? 0;
  const before = await count();
  exitOnLostNodeId(lease, silentLogger());
  lose(new ChatError('unavailable', 'lease taken'));
  await new Promise((r) => setImmediate(r));
  t.same(exits, [EXIT_NODE_ID_LOST]);
  t.equal(await count(), before + 1);
});
