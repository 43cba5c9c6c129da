import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, exportSPKI, exportJWK, SignJWT } from 'jose';
import { createAuthenticator, extractToken } from './authenticator.ts';
import { loadConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';

const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => (e instanceof ChatError ? `${e.code}: ${e.message}` : String(e)));

t.test('auth - HS256 tokens round-trip with claims and defaults', async (t) => {
  const auth = await createAuthenticator(loadConfig({}).auth);
  const p = await auth.verify(await auth.sign({ sub: 'alice', name: 'Alice', roles: ['admin'] }));
  t.match(p, { userId: 'alice', name: 'Alice', tenant: 'default', roles: ['admin'] });
  t.ok(p.expiresAt! > Date.now());
  const q = await auth.verify(await auth.sign({ sub: 'bob', tenant: 'acme' }));
  t.match(q, { userId: 'bob', name: 'bob', tenant: 'acme' });
});

t.test('auth - expired, foreign, none and malformed tokens are unauthorized', async (t) => {
  const auth = await createAuthenticator(loadConfig({}).auth);
  t.match(await codeOf(auth.verify(await auth.sign({ sub: 'a' }, -5))), /^unauthorized: token expired/);
  const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(40)));
  t.match(await codeOf(auth.verify(foreign)), /^unauthorized: token signature invalid/);
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"a"}').toString('base64url')}.`;
  t.match(await codeOf(auth.verify(none)), /^unauthorized/);
  t.match(await codeOf(auth.verify('abc')), /^unauthorized: token malformed/);
  t.match(await codeOf(auth.verify('')), /^unauthorized: missing token/);
  const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(loadConfig({}).auth.secret!));
  t.match(await codeOf(auth.verify(noSub)), /^unauthorized: token has no valid sub claim/);
});

t.test('auth - RS256 with a public key accepts only RS256', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const auth = await createAuthenticator(loadConfig({ JWT_PUBLIC_KEY: await exportSPKI(publicKey) }).auth);
  const good = await new SignJWT({ name: 'R' }).setProtectedHeader({ alg: 'RS256' }).setSubject('rsa-user').setExpirationTime('1h').sign(privateKey);
  t.match(await auth.verify(good), { userId: 'rsa-user', name: 'R' });
  const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1h').sign(new TextEncoder().encode('k'.repeat(40)));
  t.match(await codeOf(auth.verify(hs)), /^unauthorized/);
  t.match(await codeOf(auth.sign({ sub: 'x' })), /^forbidden/);
});

t.test('auth - token from header or query', async (t) => {
  t.equal(extractToken('Bearer abc', 'token=zzz'), 'abc');
  t.equal(extractToken(undefined, 'a=1&token=zzz'), 'zzz');
  t.equal(extractToken('Basic abc', ''), undefined);
});

t.test('auth - a token without exp is refused unless JWT_ALLOW_NO_EXP is set', async (t) => {
  const secret = new TextEncoder().encode(loadConfig({}).auth.secret!);
  const forever = await new SignJWT({ name: 'F' }).setProtectedHeader({ alg: 'HS256' }).setSubject('forever').setIssuedAt().sign(secret);
  const strict = await createAuthenticator(loadConfig({}).auth);
  t.match(await codeOf(strict.verify(forever)), /^unauthorized: token has no exp claim/);
  const lenient = await createAuthenticator(loadConfig({ JWT_ALLOW_NO_EXP: 'true' }).auth);
  t.match(await lenient.verify(forever), { userId: 'forever', expiresAt: undefined });
});

t.test('auth - identity claims are canonical: look-alike ids are one user, hidden characters are refused', async (t) => {
  const auth = await createAuthenticator(loadConfig({}).auth);
  t.match(await auth.verify(await auth.sign({ sub: 'ａｄｍｉｎ', tenant: 'ＡＣＭＥ' })), { userId: 'admin', tenant: 'ACME' });
  t.match(await auth.verify(await auth.sign({ sub: 'bob', name: ' Bob\u0301 ' })), { name: 'Bob\u0301'.normalize('NFC') });
  for (const sub of ['adm\u200bin', 'admin\u202e', 'has space']) {
    t.match(await codeOf(auth.verify(await auth.sign({ sub }))), /^unauthorized: token refused: the sub claim/, JSON.stringify(sub));
  }
  t.match(await codeOf(auth.verify(await auth.sign({ sub: 'carol', name: '\u200b\u200b' }))), /^unauthorized: token refused: the name claim/);
  t.match(await codeOf(auth.verify(await auth.sign({ sub: 'dave', name: 'dave\u202eexe.txt' }))), /^unauthorized: token refused: the name claim/);
  t.match(await codeOf(auth.verify(await auth.sign({ sub: 'erin', tenant: 'ac\u200bme' }))), /^unauthorized: token refused: the tenant claim/);
});

t.test('auth - verifyNow decides HS256 and PEM tokens synchronously, with the same refusals as verify', async (t) => {
  const auth = await createAuthenticator(loadConfig({ AUTH_CACHE_TOKENS: '0' }).auth);
  t.match(auth.verifyNow(await auth.sign({ sub: 'sync', tenant: 'acme' })), { userId: 'sync', tenant: 'acme' });
  const expired = await auth.sign({ sub: 'a' }, -5);
  t.throws(() => auth.verifyNow(expired), { code: 'unauthorized', message: 'token expired' });
  t.throws(() => auth.verifyNow('abc'), { code: 'unauthorized', message: 'token malformed' });
  t.throws(() => auth.verifyNow(''), { code: 'unauthorized', message: 'missing token' });
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const rsa = await createAuthenticator(loadConfig({ JWT_PUBLIC_KEY: await exportSPKI(publicKey), AUTH_CACHE_TOKENS: '0' }).auth);
  const good = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('rsa-now').setExpirationTime('1h').sign(privateKey);
  t.match(rsa.verifyNow(good), { userId: 'rsa-now' });
  const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1h').sign(new TextEncoder().encode('k'.repeat(40)));
  t.throws(() => rsa.verifyNow(hs), { code: 'unauthorized', message: 'token algorithm not allowed' });
});

t.test('auth - JWT_ISSUER and JWT_AUDIENCE are required claims', async (t) => {
  const cfg = loadConfig({ JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'chat' }).auth;
  const auth = await createAuthenticator(cfg);
  t.match(await auth.verify(await auth.sign({ sub: 'ok' })), { userId: 'ok' });
  const secret = new TextEncoder().encode(cfg.secret!);
  const otherIss = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setIssuer('https://evil.example').setAudience('chat').setExpirationTime('1h').sign(secret);
  t.match(await codeOf(auth.verify(otherIss)), /^unauthorized: token claim invalid: iss/);
  const otherAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setIssuer('https://idp.example').setAudience('billing').setExpirationTime('1h').sign(secret);
  t.match(await codeOf(auth.verify(otherAud)), /^unauthorized: token claim invalid: aud/);
});

t.test('auth - a JWKS key is fetched asynchronously: verifyNow leaves the first sight of a token to verify', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  const server = createServer((_req, res) => { fetches++; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const auth = await createAuthenticator(loadConfig({ JWKS_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks` }).auth);
  const token = await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('jwks-user').setExpirationTime('1h').sign(privateKey);
  t.equal(auth.verifyNow(token), undefined, 'undecided without the key');
  t.match(await auth.verify(token), { userId: 'jwks-user', tenant: 'acme' });
  t.equal(fetches, 1, 'the key set was fetched from the JWKS URL');
  t.match(auth.verifyNow(token), { userId: 'jwks-user' }, 'the verified token is then answered from the cache');
  const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('x').setExpirationTime('1h').sign((await generateKeyPair('RS256')).privateKey);
  t.match(await codeOf(auth.verify(foreign)), /^unauthorized: token signature invalid/);
});

t.test('auth - a JWT_PUBLIC_KEY that is not an RSA public key stops the start', async (t) => {
  await t.rejects(createAuthenticator(loadConfig({ JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }).auth), { code: 'internal' });
  const { publicKey } = await generateKeyPair('ES256');
  await t.rejects(createAuthenticator(loadConfig({ JWT_PUBLIC_KEY: await exportSPKI(publicKey) }).auth), { code: 'internal', message: /RSA/ });
});
