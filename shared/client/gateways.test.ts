import t from 'tap';
import { Gateways, type GatewayChoice } from './gateways.ts';

t.test('gateways - a list: the first, the next after a drain or a failed attempt, the same after a lost connection', async (t) => {
  const g = new Gateways('http://api', ['http://g1/', 'http://g2', 'http://g3']);
  const seen: string[] = [];
  for (const reason of ['connect', 'lost', 'draining', 'failed', 'lost', 'draining', 'draining'] as GatewayChoice[]) seen.push(await g.next(reason));
  t.same(seen, ['http://g1', 'http://g1', 'http://g2', 'http://g3', 'http://g3', 'http://g1', 'http://g2']);
});

t.test('gateways - none given: always the client url', async (t) => {
  const g = new Gateways('http://one', undefined);
  t.same([await g.next('connect'), await g.next('draining')], ['http://one', 'http://one']);
});

t.test('gateways - a provider is asked every time, with the reason and where the last attempt went', async (t) => {
  const asked: Array<{ reason: GatewayChoice; previous: string | undefined }> = [];
  const g = new Gateways('http://api', async (ctx) => {
    asked.push(ctx);
    return `http://g${asked.length}`;
  });
  t.equal(await g.next('connect'), 'http://g1');
  t.equal(await g.next('draining'), 'http://g2');
  t.same(asked, [{ reason: 'connect', previous: undefined }, { reason: 'draining', previous: 'http://g1' }]);
});

t.test('gateways - an empty list is refused', async (t) => {
  t.throws(() => new Gateways('http://api', []), TypeError);
});
