import type { ServerFrame } from '../protocol/frames.ts';

export type WireFormat = 'json' | 'msgpack';

/** Encodes what the client sends and decodes what the server sends, in the connection's format. */
export interface Codec {
  readonly format: WireFormat;
  encode(frame: Record<string, unknown>): string | Uint8Array;
  decode(data: unknown): ServerFrame;
}

const json: Codec = {
  format: 'json',
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => {
    if (typeof data !== 'string') throw new TypeError('a JSON connection received a binary frame');
    return JSON.parse(data) as ServerFrame;
  },
};

/**
 * msgpackr is loaded only for msgpack connections, so a JSON-only page does not ship it. Options
 * match the server's codec: plain msgpack maps as objects, no records.
 */
export async function createCodec(format: WireFormat): Promise<Codec> {
  if (format === 'json') return json;
  const { Packr, Unpackr } = await import('msgpackr');
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  return {
    format: 'msgpack',
    encode: (frame) => packr.pack(frame),
    decode: (data) => {
      // Text frames may still come (a server may answer an early error as JSON).
      if (typeof data === 'string') return JSON.parse(data) as ServerFrame;
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
      return unpackr.unpack(bytes) as ServerFrame;
    },
  };
}
