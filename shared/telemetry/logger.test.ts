import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from './logger.ts';

t.test('logger - keys, authorization headers and tenant secrets are redacted wherever a careless log puts them', async (t) => {
  let out = '';
  const log = createLogger('info', {}, new Writable({ write(chunk, _e, done) { out += String(chunk); done(); } }));
  log.info({ config: { apiKey: 'sk-one' }, headers: { authorization: 'Bearer ctk_two' } }, 'a');
  log.info({ record: { tenant: 'acme', secrets: { whatsappToken: 'three' } } }, 'b');
  log.info({ secrets: { telegram: 'four' } }, 'c');
  log.info({ config: { channels: { whatsapp: { appSecret: 'five', accessToken: 'six' }, telegram: { botToken: 'seven' } }, secrets: { key: 'eight' } } }, 'd');
  log.info({ cfg: { signingSecret: 'nine', secretToken: 'tg-secret-token-10', apiBase: 'http://slack.example' } }, 'e');
  for (const secret of ['sk-one', 'ctk_two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'tg-secret-token-10']) t.notOk(out.includes(secret), `${secret} is not logged`);
  t.ok(out.includes('acme') && out.includes('http://slack.example'), 'what is not secret is logged');
  t.ok(out.includes('[redacted]'), 'marked as redacted');
});
