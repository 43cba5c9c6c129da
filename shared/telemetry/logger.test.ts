import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from './logger.ts';

t.test('logger - keys, authorization headers and tenant secrets are redacted wherever a careless log puts them', async (t) => {
  let out = '';
  const log = createLogger('info', {}, new Writable({ write(chunk, _e, done) { out += String(chunk); done(); } }));
  log.info({ config: { apiKey: 'sk-one' }, headers: { authorization: 'Bearer ctk_two' } }, 'a');
  log.info({ record: { tenant: 'acme', secrets: { whatsappToken: 'three' } } }, 'b');
  log.info({ secrets: { telegram: 'four' } }, 'c');
  for (const secret of ['sk-one', 'ctk_two', 'three', 'four']) t.notOk(out.includes(secret), `${secret} is not logged`);
  t.ok(out.includes('acme'), 'what is not secret is logged');
  t.ok(out.includes('[redacted]'), 'marked as redacted');
});
