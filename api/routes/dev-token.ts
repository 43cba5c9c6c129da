import { Type } from '@sinclair/typebox';
import { createAuthenticator } from '../../shared/auth/index.ts';
import { canonicalId, canonicalName } from '../../shared/domain/index.ts';
import type { ApiDeps } from '../deps.ts';

/** A day: long enough for an afternoon of trying things, short enough not to matter if it leaks. */
const DEV_TOKEN_TTL_SEC = 24 * 3600;

const DevTokenBody = Type.Object({
  user: Type.String({ pattern: '^[^\\s]{1,128}$', description: 'user id (the sub claim): no spaces' }),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'display name (default: the user id)' })),
});

const DevTokenResult = Type.Object({
  token: Type.String(),
  userId: Type.String(),
  name: Type.String(),
  expiresIn: Type.Integer({ description: 'seconds' }),
});

/**
 * `POST /v1/dev/token`: a signed token for any user, so the web page can sign in by name. Only
 * registered while the server signs with the development secret (AuthConfig.devTokens), which
 * production refuses: anywhere else the path is a plain 404.
 */
export async function devTokenRoutes({ server, auth }: ApiDeps): Promise<void> {
  if (!auth.devTokens) return;
  const signer = await createAuthenticator(auth);
  server.route({
    method: 'post', path: '/v1/dev/token', operationId: 'devToken', tags: ['development'], auth: false,
    summary: 'Development only: a token for any user (the server runs with the development secret)',
    body: DevTokenBody,
    response: DevTokenResult,
    handler: async ({ body }) => {
      // the token's claims in the form verification reads them, so no token is minted that would be refused
      const userId = canonicalId(body.user, 'user');
      const name = body.name?.trim() ? canonicalName(body.name, 'name') : userId;
      const token = await signer.sign({ sub: userId, name }, DEV_TOKEN_TTL_SEC);
      return { token, userId, name, expiresIn: DEV_TOKEN_TTL_SEC };
    },
  });
}
