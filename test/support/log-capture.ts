import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger whose records are kept in memory, to assert what was logged and how often. */
export function captureLog(level = 'debug'): { log: Logger; records: LogRecord[]; matching(level: number, msg: RegExp): LogRecord[] } {
  const records: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) records.push(JSON.parse(line) as LogRecord);
      done();
    },
  });
  return {
    log: pino({ level }, sink),
    records,
    matching: (lvl, msg) => records.filter((r) => r.level === lvl && msg.test(r.msg)),
  };
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;
