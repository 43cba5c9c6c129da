import { ErrorCode, headers as natsHeaders, type MsgHdrs } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import type { DurableAck } from './bus.ts';
import { checkDurableArguments } from './durable-arguments.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { describe, unavailable } from './nats-errors.ts';
import { DURABLE_PREFIX } from './nats-messages.ts';
import type { NatsStreamSetup } from './nats-stream.ts';

/**
 * The durable publish: one JetStream publish per event, resolved once the stream stored it. The
 * dedupe id is the JetStream message id, so the stream's duplicate window does the dedupe.
 */
export class NatsDurablePublisher {
  readonly #connection: Pick<NatsBusConnection, 'require'>;
  readonly #stream: Pick<NatsStreamSetup, 'name' | 'ensureInBackground'>;
  readonly #timeoutMs: number;

  constructor(connection: Pick<NatsBusConnection, 'require'>, stream: Pick<NatsStreamSetup, 'name' | 'ensureInBackground'>, timeoutMs: number) {
    this.#connection = connection;
    this.#stream = stream;
    this.#timeoutMs = timeoutMs;
  }

  async publish(roomId: string, dedupeId: string, payload: Uint8Array, headers: Record<string, string> | undefined): Promise<DurableAck> {
    checkDurableArguments(roomId, dedupeId);
    // fail fast while disconnected: nats.js would buffer the request until its timeout
    const { js } = this.#connection.require();
    let hdrs: MsgHdrs | undefined;
    if (headers !== undefined) {
      hdrs = natsHeaders();
      try {
        for (const key in headers) hdrs.set(key, headers[key]!);
      } catch (err) {
        throw new ChatError('bad_request', `invalid header for a NATS message: ${describe(err)}`, { cause: err });
      }
    }
    try {
      const pa = await js.publish(DURABLE_PREFIX + roomId, payload, { msgID: dedupeId, headers: hdrs, timeout: this.#timeoutMs });
      return { seq: pa.seq, duplicate: pa.duplicate };
    } catch (err) {
      throw this.#publishError(err, roomId);
    }
  }

  #publishError(err: unknown, roomId: string): ChatError {
    const code = (err as { code?: unknown }).code;
    if (code === ErrorCode.MaxPayloadExceeded) {
      return new ChatError('too_large', `event for room ${roomId} is larger than the NATS max payload`, { cause: err });
    }
    if (code === ErrorCode.Timeout) {
      return new ChatError('unavailable', `the stream did not confirm the event for room ${roomId} within ${this.#timeoutMs} ms`, { cause: err });
    }
    if (code === ErrorCode.NoResponders) {
      this.#stream.ensureInBackground(true);
      return new ChatError('unavailable', `no JetStream stream takes ${DURABLE_PREFIX}${roomId} (is ${this.#stream.name} there?)`, { cause: err });
    }
    return unavailable(err, `publishing the event for room ${roomId}`);
  }
}
