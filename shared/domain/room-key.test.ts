import t from 'tap';
import { BARE_KEY_TENANT, keyOfRoom, roomIdOf, roomKey, tenantOf } from './room-key.ts';

const SUBJECT_TOKEN = /^[^\s.*>]+$/;

t.test('room key - the default tenant keeps bare ids; other tenants get their own key for the same id', async (t) => {
  t.equal(roomKey(BARE_KEY_TENANT, 'general'), 'general', 'stored rows and subjects of the default tenant read as before');
  const a = roomKey('acme', 'general');
  const b = roomKey('globex', 'general');
  t.not(a, b);
  t.not(a, 'general');
  t.equal(a, 'acme:general');
  t.equal(keyOfRoom({ tenant: 'acme', roomId: 'general' }), a);
});

t.test('room key - parses back to tenant and id, for any tenant, and is one subject token', async (t) => {
  for (const tenant of [BARE_KEY_TENANT, 'acme', 'a.b', 'x*y>z', '~tilde', 'a:b', 'ünïcødé', '租户', 'a'.repeat(128)]) {
    for (const id of ['general', 'room_123', 'A-b_C', 'x'.repeat(64)]) {
      const key = roomKey(tenant, id);
      t.equal(roomIdOf(key), id, `${tenant}/${id}: id`);
      t.equal(tenantOf(key), tenant, `${tenant}/${id}: tenant`);
      t.match(key, SUBJECT_TOKEN, `${tenant}/${id}: subject token`);
    }
  }
  t.not(roomKey('a.b', 'r'), roomKey('a_b', 'r'), 'tenants that would look alike as tokens stay apart');
  t.not(roomKey('~YQ', 'r'), roomKey('a', 'r'));
});
