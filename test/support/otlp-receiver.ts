import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * An OTLP/HTTP trace receiver for tests: accepts what an exporter POSTs to /v1/traces and decodes
 * the protobuf it really sent (ExportTraceServiceRequest of opentelemetry-proto, the fields tests
 * read), so a test sees the spans as a collector would.
 */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** SpanKind of the proto: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  links: Array<{ traceId: string; spanId: string }>;
  /** Status code of the proto: 0 unset, 1 ok, 2 error. */
  statusCode: number;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces). */
  url: string;
  spans: ReceivedSpan[];
  /** Content types of the requests received. */
  contentTypes: string[];
  /** Waits until `pred` holds for the spans received (or throws after `timeoutMs`). */
  until(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const type = req.headers['content-type'] ?? '';
      contentTypes.push(type);
      if (!type.startsWith('application/x-protobuf')) {
        res.writeHead(415).end();
        return;
      }
      const bytes = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
      spans.push(...decodeExportTraceServiceRequest(bytes));
      // an empty ExportTraceServiceResponse: everything accepted
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    }, () => res.writeHead(400).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    async until(pred, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(spans)) {
        if (Date.now() > deadline) throw new Error(`spans awaited did not arrive; received: ${spans.map((s) => `${s.service}:${s.name}`).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Fields of one protobuf message by number: varints as bigint, the rest as their bytes. */
type Fields = Map<number, Array<bigint | Buffer>>;

/** The protobuf wire format: tag = field << 3 | wire type (0 varint, 1 fixed64, 2 bytes, 5 fixed32). */
function decodeMessage(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('truncated varint');
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    let value: bigint | Buffer;
    switch (tag & 7) {
      case 0: value = varint(); break;
      case 1: value = buf.subarray(pos, pos += 8); break;
      case 2: { const len = Number(varint()); value = buf.subarray(pos, pos += len); break; }
      case 5: value = buf.subarray(pos, pos += 4); break;
      default: throw new Error(`unsupported wire type ${tag & 7} at ${pos}`);
    }
    if (pos > buf.length) throw new Error('truncated message');
    const list = fields.get(field);
    if (list) list.push(value);
    else fields.set(field, [value]);
  }
  return fields;
}

const bytesOf = (f: Fields, n: number): Buffer[] => (f.get(n) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v));
const firstBytes = (f: Fields, n: number): Buffer | undefined => bytesOf(f, n)[0];
const firstInt = (f: Fields, n: number): number => Number((f.get(n)?.[0] as bigint | undefined) ?? 0n);
const hex = (b: Buffer | undefined): string => (b ? b.toString('hex') : '');

/** KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int, 4 double } } */
function attributesOf(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const f = decodeMessage(kv);
    const key = firstBytes(f, 1)?.toString('utf8') ?? '';
    const any = decodeMessage(firstBytes(f, 2) ?? Buffer.alloc(0));
    if (any.has(1)) out[key] = firstBytes(any, 1)!.toString('utf8');
    else if (any.has(2)) out[key] = firstInt(any, 2) === 1;
    else if (any.has(3)) out[key] = firstInt(any, 3);
    else if (any.has(4)) out[key] = firstBytes(any, 4)!.readDoubleLE(0);
  }
  return out;
}

/**
 * ExportTraceServiceRequest { 1 ResourceSpans { 1 Resource { 1 attributes }, 2 ScopeSpans { 2 Span } } };
 * Span { 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes, 13 Link { 1 trace_id, 2 span_id }, 15 Status { 3 code } }.
 */
export function decodeExportTraceServiceRequest(buf: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of bytesOf(decodeMessage(buf), 1)) {
    const rsf = decodeMessage(rs);
    const resource = decodeMessage(firstBytes(rsf, 1) ?? Buffer.alloc(0));
    const service = String(attributesOf(bytesOf(resource, 1))['service.name'] ?? '');
    for (const ss of bytesOf(rsf, 2)) {
      for (const raw of bytesOf(decodeMessage(ss), 2)) {
        const s = decodeMessage(raw);
        const status = decodeMessage(firstBytes(s, 15) ?? Buffer.alloc(0));
        out.push({
          service,
          traceId: hex(firstBytes(s, 1)),
          spanId: hex(firstBytes(s, 2)),
          parentSpanId: hex(firstBytes(s, 4)),
          name: firstBytes(s, 5)?.toString('utf8') ?? '',
          kind: firstInt(s, 6),
          attributes: attributesOf(bytesOf(s, 9)),
          links: bytesOf(s, 13).map((l) => { const lf = decodeMessage(l); return { traceId: hex(firstBytes(lf, 1)), spanId: hex(firstBytes(lf, 2)) }; }),
          statusCode: firstInt(status, 3),
        });
      }
    }
  }
  return out;
}
