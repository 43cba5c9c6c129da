import t from 'tap';
import { randomBytes } from 'node:crypto';
import { aesGcmCipher, SecretsError } from './secret-cipher.ts';
import { parseSecretKey, secretKeyId } from './secret-key.ts';

const ctx = 'tenant-secret\0acme\0whatsapp.appSecret';

t.test('secrets cipher - a sealed value opens to the same text, is never the text, and differs each time', async (t) => {
  const key = randomBytes(32);
  const cipher = aesGcmCipher({ current: key, previous: [] });
  const plain = 'EAAG-whatsapp-token-é-🔑';
  const a = cipher.seal(plain, ctx);
  const b = cipher.seal(plain, ctx);
  t.match(a, new RegExp(`^v1:${secretKeyId(key)}:[A-Za-z0-9_-]+$`), 'versioned, naming its key');
  t.notOk(a.includes(plain) || a.includes(Buffer.from(plain).toString('base64')), 'the text is not in it');
  t.not(a, b, 'a fresh IV each time');
  t.equal(cipher.open(a, ctx), plain);
  t.equal(cipher.open(b, ctx), plain);
  t.equal(cipher.open(cipher.seal('', ctx), ctx), '', 'an empty value too');
});

t.test('secrets cipher - a value of a key it does not have is refused with a typed error, never read as text', async (t) => {
  const sealed = aesGcmCipher({ current: randomBytes(32), previous: [] }).seal('token', ctx);
  const other = aesGcmCipher({ current: randomBytes(32), previous: [] });
  const err = t.throws(() => other.open(sealed, ctx)) as SecretsError;
  t.type(err, SecretsError);
  t.equal(err.reason, 'unknown_key');
  t.equal(err.code, 'unavailable', '503: the deployment\'s keys are wrong');
  t.match(err.message, /SECRETS_KEY_PREVIOUS/);
});

t.test('secrets cipher - after a rotation the previous key still opens, and new values are sealed under the new key', async (t) => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = aesGcmCipher({ current: oldKey, previous: [] }).seal('old-token', ctx);
  const rotated = aesGcmCipher({ current: newKey, previous: [oldKey] });
  t.equal(rotated.open(before, ctx), 'old-token');
  const after = rotated.seal('old-token', ctx);
  t.match(after, new RegExp(`^v1:${secretKeyId(newKey)}:`));
  t.throws(() => aesGcmCipher({ current: oldKey, previous: [] }).open(after, ctx), { name: 'SecretsError', reason: 'unknown_key' }, 'the old key alone cannot read it');
  const readOnly = aesGcmCipher({ current: undefined, previous: [oldKey] });
  t.equal(readOnly.open(before, ctx), 'old-token', 'a previous key without a current one still reads');
  t.equal(readOnly.canSeal, false);
  t.throws(() => readOnly.seal('x', ctx), { name: 'SecretsError', reason: 'no_key', code: 'unavailable' });
});

t.test('secrets cipher - a plain value stored before sealing reads as it is', async (t) => {
  const cipher = aesGcmCipher({ current: randomBytes(32), previous: [] });
  t.equal(cipher.open('EAAG-legacy-plain-token', ctx), 'EAAG-legacy-plain-token');
  t.equal(cipher.open('123456:telegram-bot-token', ctx), '123456:telegram-bot-token');
  t.equal(aesGcmCipher({ current: undefined, previous: [] }).open('plain', ctx), 'plain', 'without any key too');
});

t.test('secrets cipher - a changed ciphertext, a value moved to another tenant or name, and a mangled one are refused', async (t) => {
  const cipher = aesGcmCipher({ current: randomBytes(32), previous: [] });
  const sealed = cipher.seal('the-secret', ctx);
  const [prefix, id, body] = sealed.split(':') as [string, string, string];
  const bytes = Buffer.from(body, 'base64url');
  for (const at of [0, 13, bytes.length - 1]) {
    const flipped = Buffer.from(bytes);
    flipped[at]! ^= 0x01;
    t.throws(() => cipher.open(`${prefix}:${id}:${flipped.toString('base64url')}`, ctx), { name: 'SecretsError', reason: 'tampered', code: 'internal' }, `byte ${at} changed`);
  }
  t.throws(() => cipher.open(sealed, 'tenant-secret\0globex\0whatsapp.appSecret'), { name: 'SecretsError', reason: 'tampered' }, 'another tenant');
  t.throws(() => cipher.open(sealed, 'tenant-secret\0acme\0slack.signingSecret'), { name: 'SecretsError', reason: 'tampered' }, 'another name');
  t.throws(() => cipher.open(`${prefix}:${id}:${body.slice(0, 20)}`, ctx), { name: 'SecretsError', reason: 'malformed' }, 'cut short');
  t.throws(() => cipher.open(`v1:${id}:not base64!`, ctx), { name: 'SecretsError', reason: 'malformed' });
  t.throws(() => cipher.open('v1:', ctx), { name: 'SecretsError', reason: 'malformed' }, 'the prefix is ours: never taken for plain text');
});

t.test('secrets key - 64 hex digits or base64 of 32 bytes; anything else is refused without repeating it', async (t) => {
  const key = randomBytes(32);
  t.same(parseSecretKey(key.toString('hex')), key);
  t.same(parseSecretKey(key.toString('base64')), key);
  t.same(parseSecretKey(key.toString('base64url')), key);
  t.same(parseSecretKey(` ${key.toString('base64')}\n`), key, 'a trailing newline (a key file) is fine');
  for (const bad of ['', 'short', randomBytes(16).toString('base64'), randomBytes(31).toString('hex'), randomBytes(48).toString('base64')]) {
    const err = t.throws(() => parseSecretKey(bad)) as Error;
    t.match(err.message, /expected 32 bytes/);
    if (bad.length > 8) t.notOk(err.message.includes(bad), 'the value is not in the message');
  }
  t.not(secretKeyId(key), secretKeyId(randomBytes(32)));
  t.match(secretKeyId(key), /^[0-9a-f]{8}$/);
});
