import { ChatError } from '../../shared/protocol/index.ts';

/** The ChatError code `fn` throws, `none` when it returns, `other` for anything else thrown. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (err) {
    return err instanceof ChatError ? err.code : 'other';
  }
}

/** The same for a promise: the code it rejects with, `none` when it resolves, `other: ...` otherwise. */
export async function errorCodeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return err instanceof ChatError ? err.code : `other: ${String(err)}`;
  }
}
