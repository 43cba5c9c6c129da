/**
 * Write timestamps (µs). Message-plane cells carry their event time, so the latest event wins per
 * cell whatever order events arrive in. A delete erases content at STICKY, later than any event
 * time, so nothing written afterwards brings the text back. Read marks and deliveries keep their
 * EARLIEST time: they are written at REVERSED(at), which is larger the earlier `at` is.
 * Control-plane writes (rooms, members) take the time of the writing process: ControlClock.
 */
export const STICKY = 1n << 62n;
export const REVERSED_BASE = 1n << 62n;
export const msTs = (at: number) => BigInt(at) * 1000n;
/** Content writes: the event time, with the event id's last digits to order events of one millisecond. */
export const contentTs = (at: number, eventId: bigint) => BigInt(at) * 1000n + (eventId % 1000n);
export const reversedTs = (at: number) => REVERSED_BASE - BigInt(at) * 1000n;

/** Monotonic microseconds of this process, for control-plane writes. */
export class ControlClock {
  private last = 0n;

  now(): bigint {
    let us = BigInt(Date.now()) * 1000n;
    if (us <= this.last) us = this.last + 1n;
    this.last = us;
    return us;
  }
}
