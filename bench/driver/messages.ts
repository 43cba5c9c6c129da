/** IPC between the bench (parent) and its load workers. Every command carries an id its reply echoes. */

export interface PeerTarget {
  client: 'ws' | 'socketio';
  format: 'json' | 'msgpack';
  urls: string[];
}

export interface ClientSpec {
  /** Global client index: picks the gateway URL and the source address. */
  idx: number;
  userId: string;
  roomId: string;
  /** For resume: the last message id the client "saw" in its room. */
  lastMessageId?: string;
}

export type Command =
  | {
    cmd: 'connect'; id: number; peer: PeerTarget; clients: ClientSpec[]; sourceAddresses: number;
    join: boolean; resume: boolean; concurrency: number; timeoutMs: number;
    /** Attempts after a failed one (a real client reconnects); storm counts them. */
    retries: number;
  }
  | { cmd: 'run'; id: number; stepId: number; rate: number; durationMs: number; payloadBytes: number }
  | { cmd: 'stats'; id: number; stepId: number }
  | { cmd: 'collect'; id: number; stepId: number }
  | { cmd: 'ingest'; id: number; perClient: number; window: number; payloadBytes: number; timeoutMs: number }
  | { cmd: 'close'; id: number }
  | { cmd: 'exit'; id: number };

export interface ConnectReply {
  id: number; ok: number; failed: number; retried: number;
  /** The first few failure messages, retried ones included. */
  errors: string[];
  /** ms from the command's start until the last client was welcomed / joined / resumed. */
  welcomedMs: number; joinedMs: number; resumedMs: number;
  /** Per client, start of its connect until it was ready (µs), encoded HDR histogram. */
  readyHist: string;
}

export interface RunReply {
  id: number; sent: number; sendFailures: number;
  /** Deliveries received while the step ran, whatever step they belonged to. */
  deliveredInWindow: number;
  /** Acks of send_message received while the step ran. */
  ackedInWindow: number;
  windowMs: number;
  cpuMicros: number;
  /** Error frames received since the last report, by code. */
  errors: Record<string, number>;
  /** Connections that closed on their own since the last report. */
  closed: number;
}

export interface StatsReply { id: number; delivered: number }
export interface CollectReply { id: number; delivered: number; hist: string }

export interface IngestReply {
  id: number; acked: number; failed: number; elapsedMs: number; cpuMicros: number;
  ackHist: string; errors: Record<string, number>;
}

export type Reply = ConnectReply | RunReply | StatsReply | CollectReply | IngestReply | { id: number; error?: string };
