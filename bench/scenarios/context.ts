import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerPool } from '../driver/pool.ts';
import { summarizeProfiles, type ProfileSummary } from '../lib/cpu-profile.ts';
import type { ClientSpec, ConnectReply } from '../driver/messages.ts';
import type { Progress } from '../lib/progress.ts';
import { mergeEncoded, newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { ROOT, peerLabel, startPeer, type Peer, type PeerName, type PeerOptions } from '../peers/peers.ts';
import type { Chart } from '../report/svg.ts';
import type { Ratio } from '../report/report.ts';

export interface Context {
  quick: boolean;
  progress: Progress;
  /** Created on first use: scenarios without WebSocket clients never start workers. */
  pool(): WorkerPool;
  hasPool(): boolean;
  workers: number;
  /** Source addresses (127.0.0.2 ...) the client sockets are spread over. */
  sourceAddresses: number;
  notes: string[];
  /** Run chat-svc processes with --cpu-prof and summarize the profiles in the report. */
  profile: boolean;
  profiles: Array<{ peer: PeerName; label: string; summary: ProfileSummary }>;
}

export interface ScenarioResult {
  options: Record<string, unknown>;
  results: unknown;
  ratios: Ratio[];
  /** Markdown body; `{{SVG}}` is replaced by the plot's file name. */
  markdown: string;
  charts: Chart[];
}

/** A B A B: each peer `reps` times, interleaved, so drift of the machine hits every peer alike. */
export function interleave(peers: readonly PeerName[], reps: number): Array<{ peer: PeerName; rep: number }> {
  const order: Array<{ peer: PeerName; rep: number }> = [];
  for (let rep = 1; rep <= reps; rep++) for (const peer of peers) order.push({ peer, rep });
  return order;
}

/** Starts the peer, runs `fn`, and always stops it (and the clients) again. */
export async function withPeer<T>(ctx: Context, name: PeerName, opts: PeerOptions, fn: (peer: Peer) => Promise<T>, label = peerLabel(name, opts)): Promise<T> {
  const profileDir = ctx.profile && (name === 'chat' || name === 'chat-nats') ? mkdtempSync(join(tmpdir(), 'bench-prof-')) : undefined;
  try {
    const peer = await startPeer(name, { ...opts, ...(profileDir ? { profileDir } : {}) });
    try {
      return await fn(peer);
    } finally {
      if (ctx.hasPool()) await ctx.pool().all({ cmd: 'close' });
      await peer.stop();
    }
  } finally {
    if (profileDir) {
      const summary = summarizeProfiles(profileDir, ROOT);
      if (summary) ctx.profiles.push({ peer: name, label, summary });
      rmSync(profileDir, { recursive: true, force: true });
    }
  }
}

/**
 * `rooms x members` clients: client i is in room floor(i / members), on worker i % workers, so every
 * room's members are spread over the workers (and over the gateways, by the same index).
 */
export function roomShape(prefix: string, rooms: number, members: number, workers: number, lastMessageIds?: Map<string, string>): { roomIds: string[]; perWorker: ClientSpec[][] } {
  const roomIds = Array.from({ length: rooms }, (_, r) => `${prefix}-r${r}`);
  const perWorker: ClientSpec[][] = Array.from({ length: workers }, () => []);
  for (let i = 0; i < rooms * members; i++) {
    const roomId = roomIds[Math.floor(i / members)]!;
    const last = lastMessageIds?.get(roomId);
    perWorker[i % workers]!.push({ idx: i, userId: `${prefix}-u${i}`, roomId, ...(last ? { lastMessageId: last } : {}) });
  }
  return { roomIds, perWorker };
}

export interface ConnectResult {
  clients: number;
  ok: number;
  failed: number;
  /** Failed attempts that were tried again. */
  retried: number;
  errors: string[];
  welcomedMs: number;
  joinedMs: number;
  resumedMs: number;
  wallMs: number;
  ready: LatencySummary;
}

export async function connectClients(ctx: Context, peer: Peer, perWorker: ClientSpec[][], opts: { join: boolean; resume: boolean; concurrency: number; timeoutMs: number; retries?: number }): Promise<ConnectResult> {
  const pool = ctx.pool();
  const t0 = performance.now();
  const replies = await pool.all<ConnectReply>((i) => ({
    cmd: 'connect', peer: { client: peer.client, format: peer.format, urls: peer.urls }, clients: perWorker[i] ?? [],
    sourceAddresses: ctx.sourceAddresses, join: opts.join, resume: opts.resume, retries: opts.retries ?? 2,
    concurrency: Math.max(1, Math.ceil(opts.concurrency / pool.size)), timeoutMs: opts.timeoutMs,
  }));
  const wallMs = performance.now() - t0;
  const ready = mergeEncoded(newHistogram(), replies.map((r) => r.readyHist));
  return {
    clients: perWorker.reduce((n, w) => n + w.length, 0),
    ok: replies.reduce((n, r) => n + r.ok, 0),
    failed: replies.reduce((n, r) => n + r.failed, 0),
    retried: replies.reduce((n, r) => n + r.retried, 0),
    errors: replies.flatMap((r) => r.errors).slice(0, 5),
    welcomedMs: Math.max(...replies.map((r) => r.welcomedMs)),
    joinedMs: Math.max(...replies.map((r) => r.joinedMs)),
    resumedMs: Math.max(...replies.map((r) => r.resumedMs)),
    wallMs,
    ready: summarize(ready),
  };
}

export function mean(values: Array<number | null | undefined>): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

export function ratio(name: string, num: number | null, den: number | null, target: string, ok: (r: number) => boolean): Ratio {
  const value = num !== null && den !== null && den > 0 ? num / den : null;
  return { name, value, target, met: value === null ? null : ok(value) };
}

export const fmt = (v: number | null | undefined, digits = 0): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
