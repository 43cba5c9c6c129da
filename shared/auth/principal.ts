/** Who is making a request, from a verified token. */
export interface Principal {
  userId: string;
  name: string;
  tenant: string;
  roles: string[];
  /** Token expiry (ms since epoch), when the token had one. */
  expiresAt: number | undefined;
}
