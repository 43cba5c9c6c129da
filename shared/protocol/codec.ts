import { Packr, Unpackr } from 'msgpackr';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ChatError } from './errors.ts';
import { ClientFrames, CLIENT_FRAME_TYPES, MAX_REF_LENGTH, type ClientFrame, type ClientFrameType, type ServerFrame } from './frames.ts';
import { MAX_NESTING_DEPTH, plainDataProblem } from './plain-data.ts';
import { msgpackNestsDeeper } from './msgpack-depth.ts';

export type WireFormat = 'json' | 'msgpack';

/**
 * Plain msgpack (no records, no extensions beyond timestamps) so any msgpack library in any
 * language decodes our frames. `mapsAsObjects` keeps decoded maps as plain objects.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
/**
 * 64-bit integers within ±2^53 decode as numbers (encoders in other languages often write small
 * values as int64); larger ones as bigint, which the edge check refuses.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
// msgpackr 2.x implements 'auto' (the constructor copies options onto the instance) but its type declarations omit it
Object.assign(unpackr, { int64AsType: 'auto' });

export function encodeMsgpack(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

export function encodeFrame(frame: ServerFrame, format: WireFormat): string | Buffer {
  return format === 'msgpack' ? packr.pack(frame) : JSON.stringify(frame);
}

const checks = new Map<string, TypeCheck<any>>();
for (const type of CLIENT_FRAME_TYPES) checks.set(type, TypeCompiler.Compile(ClientFrames[type]));

/**
 * Parses and validates one client frame. Binary frames are msgpack, text frames JSON (whatever
 * format the connection receives in). Throws ChatError('bad_frame') with the first problem (not
 * plain data, see plain-data.ts, or the first schema error), carrying the frame's `ref` when it
 * has a usable one; never anything else, so one bad frame cannot take the connection down.
 */
export function decodeClientFrame(data: ArrayBuffer | Uint8Array, isBinary: boolean): ClientFrame {
  let value: unknown;
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (isBinary && msgpackNestsDeeper(bytes, MAX_NESTING_DEPTH)) {
    throw new ChatError('bad_frame', `frame is not plain data: objects and arrays may nest at most ${MAX_NESTING_DEPTH} levels`);
  }
  try {
    value = isBinary ? unpackr.unpack(bytes) : JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new ChatError('bad_frame', isBinary ? 'frame is not valid msgpack' : 'frame is not valid JSON', { cause: err });
  }
  return validateClientFrame(value);
}

export function validateClientFrame(value: unknown): ClientFrame {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ChatError('bad_frame', 'frame must be an object with a "type"');
  }
  const details = refOf(value);
  const problem = plainDataProblem(value);
  if (problem) throw new ChatError('bad_frame', `frame is not plain data: ${problem}`, { details });
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') throw new ChatError('bad_frame', 'frame must have a string "type"', { details });
  const check = checks.get(type);
  if (!check) throw new ChatError('bad_frame', `unknown frame type "${type.slice(0, 40)}"`, { details });
  if (!check.Check(value)) {
    const first = check.Errors(value).First();
    throw new ChatError('bad_frame', `invalid ${type}: ${first ? `${first.path || '/'} ${first.message}` : 'schema mismatch'}`, { details });
  }
  return value as ClientFrame;
}

/** The frame's `ref` for the error that answers it, when it is one the schema would accept. */
function refOf(value: object): { ref: string | number } | undefined {
  const ref = (value as { ref?: unknown }).ref;
  if (typeof ref === 'string' && ref.length <= MAX_REF_LENGTH) return { ref };
  if (typeof ref === 'number' && Number.isFinite(ref)) return { ref };
  return undefined;
}

export function isClientFrameType(type: string): type is ClientFrameType {
  return checks.has(type);
}

/**
 * The `type` of a msgpack-encoded server frame without decoding it: frames are maps whose first
 * key is "type" (fixmap, fixstr "type", fixstr value). Used on the fan-out path for metrics labels.
 */
export function peekMsgpackType(bytes: Uint8Array): string | undefined {
  // 0x8N fixmap, 0xa4 "type"
  if (bytes.length < 8 || (bytes[0]! & 0xf0) !== 0x80 || bytes[1] !== 0xa4) return undefined;
  const header = bytes[6]!;
  if ((header & 0xe0) !== 0xa0) return undefined;
  const len = header & 0x1f;
  return Buffer.from(bytes.buffer, bytes.byteOffset + 7, len).toString('latin1');
}
