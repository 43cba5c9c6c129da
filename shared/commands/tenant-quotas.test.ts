import t from 'tap';
import { TenantQuotaReader, effectiveQuotas } from './tenant-quotas.ts';
import { createMemoryRateLimiter } from '../rate-limit/index.ts';

const defaults = { rooms: 10, membersPerRoom: 0, messagesPerSecond: 5, aiRequestsPerMinute: 0 };

t.test('tenant quotas - the tenant\'s own values over the defaults', async (t) => {
  t.strictSame(effectiveQuotas(defaults, undefined), defaults);
  t.strictSame(effectiveQuotas(defaults, { quotas: { rooms: 0, aiRequestsPerMinute: 3 } }), { ...defaults, rooms: 0, aiRequestsPerMinute: 3 }, '0 (unlimited) is a value too');
});

t.test('tenant quotas - read once per ttl per tenant; a failed read is tried again', async (t) => {
  let now = 0;
  let reads = 0;
  let fail = false;
  let rooms = 1;
  const reader = new TenantQuotaReader(defaults, {
    getTenant: async () => {
      reads++;
      if (fail) throw new Error('store down');
      return { quotas: { rooms } };
    },
  }, { ttlMs: 1000, now: () => now });
  t.equal((await reader.of('a')).rooms, 1);
  rooms = 2;
  t.equal((await reader.of('a')).rooms, 1, 'cached');
  t.equal(reads, 1);
  now = 1000;
  t.equal((await reader.of('a')).rooms, 2, 'read again after the ttl');
  now = 2000;
  fail = true;
  await t.rejects(reader.of('a'));
  fail = false;
  t.equal((await reader.of('a')).rooms, 2, 'the failure was not kept');
  t.strictSame(await new TenantQuotaReader(defaults, undefined).of('x'), defaults, 'no store: the defaults');
});

t.test('tenant quotas - metric labels are bounded to the configured tenants', async (t) => {
  const reader = new TenantQuotaReader(defaults, undefined, { metricLabels: ['big'] });
  t.equal(reader.label('big'), 'big');
  t.equal(reader.label('small'), 'other');
  t.equal(reader.label(`t-${Math.random()}`), 'other');
});

t.test('tenant quotas - a rate quota takes from the tenant bucket and names itself when spent', async (t) => {
  const limiter = createMemoryRateLimiter();
  t.teardown(() => limiter.close());
  const reader = new TenantQuotaReader({ ...defaults, aiRequestsPerMinute: 1 }, undefined);
  await reader.takeRate(limiter, 'a', 'aiRequestsPerMinute', 'k:a');
  await t.rejects(reader.takeRate(limiter, 'a', 'aiRequestsPerMinute', 'k:a'), { code: 'rate_limited', message: /quota aiRequestsPerMinute exceeded \(1\/min\)/, details: { quota: 'aiRequestsPerMinute', limit: 1 } });
  await reader.takeRate(limiter, 'b', 'aiRequestsPerMinute', 'k:b');
  const unlimited = new TenantQuotaReader({ ...defaults, messagesPerSecond: 0 }, undefined);
  for (let i = 0; i < 100; i++) await unlimited.takeRate(limiter, 'a', 'messagesPerSecond', 'm:a');
  t.pass('0 is unlimited');
});
