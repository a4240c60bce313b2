// Types for the WIM-Z relay client (wimz.js). The wire format is
// docs/PROTOCOL.md; field names of frames are the relay's (snake_case).

export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends Record<string, unknown> = Record<string, unknown>> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): () => void;
  once<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): () => void;
  off<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): void;
  listenerCount(event: string): number;
  emit<K extends keyof Events & string>(event: K, payload: Events[K]): boolean;
}

// ---- errors ---------------------------------------------------------------

export const ErrorCode: {
  readonly TIMEOUT: 'timeout';
  readonly DISCONNECTED: 'disconnected';
  readonly CLOSED: 'closed';
  readonly UNAUTHORIZED: 'unauthorized';
  readonly TOKEN_EXPIRED: 'token_expired';
  readonly NETWORK: 'network';
  readonly OVERFLOW: 'overflow';
  readonly SESSION_CLOSED: 'session_closed';
};

/** Relay wire codes (PROTOCOL §3, Part 2 B/C) and the SDK's own (ErrorCode). */
export type WimzErrorCode =
  | (typeof ErrorCode)[keyof typeof ErrorCode]
  | 'bad_message' | 'unsupported' | 'unknown_device' | 'not_owner' | 'robot_offline'
  | 'unknown_session' | 'session_limit' | 'rate_limited' | 'not_subscribed' | 'internal' | 'watcher_limit'
  | 'bad_request' | 'forbidden' | 'not_found' | 'conflict' | 'payload_too_large' | 'unavailable'
  | 'login_throttled' | 'registration_throttled' | 'user_socket_limit' | 'ip_socket_limit' | 'device_limit'
  | (string & {});

export class WimzError extends Error {
  constructor(code: string, message?: string, extra?: { ref?: unknown; status?: number; frame?: unknown; body?: unknown; cause?: unknown });
  readonly name: 'WimzError';
  code: WimzErrorCode;
  /** The `id` of the message the relay's error is about. */
  ref?: unknown;
  /** HTTP status, for REST errors. */
  status?: number;
  /** The relay's `{"type":"error",...}` frame. */
  frame?: ErrorFrame;
  /** An HTTP error body (`{"error":{code,message}}`). */
  body?: unknown;
  /** For `session_closed`: why. */
  reason?: string;
  /** Seconds from a 429's `Retry-After` (caps and throttles). */
  retryAfterS?: number;
  static fromFrame(frame: ErrorFrame): WimzError;
  static fromHttp(status: number, body: unknown, headers?: { get(name: string): string | null }): WimzError;
}

// ---- frames ---------------------------------------------------------------

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  ref?: unknown;
}

export interface Snapshot {
  mode: unknown;
  /** The last `mission_progress` data. */
  mission: MissionProgress | Record<string, unknown> | null;
  /** The last `battery` data, or `status_update.data.battery`. */
  battery: unknown;
}

export interface MissionProgress {
  mission?: string;
  status?: string;
  stage?: number;
  total_stages?: number;
  [k: string]: unknown;
}

/** A device event with the relay's envelope (PROTOCOL §3.3). */
export interface EventFrame {
  type: 'event';
  event: 'mission_progress' | 'mode_changed' | 'bark_detected' | 'dog_detected' | 'treat_dispensed'
    | 'battery' | 'status_update' | 'alert' | 'photo' | 'audio_message' | 'robot_connected'
    | 'robot_disconnected' | (string & {});
  device_id: string;
  epoch: number;
  seq: number;
  ts_ms: number;
  data?: unknown;
  /** PROTOCOL Part 2 H: not part of the numbering (carries the last seq). */
  unnumbered?: boolean;
  reason?: string;
  [k: string]: unknown;
}

export interface SubscribedFrame {
  type: 'subscribed';
  device_id: string;
  robot_online: boolean;
  epoch: number;
  seq: number;
  snapshot: Snapshot;
}

export interface RecoveredFrame {
  type: 'recovered';
  device_id: string;
  complete: boolean;
  reason?: 'gap' | 'epoch_changed' | (string & {});
}

export interface UnsubscribedNotice {
  type: 'unsubscribed';
  device_id: string;
  /** `client` (unsubscribe()), `client_closed`, `device_deleted`, `device_unavailable`, `not_owner`, ... */
  reason?: string;
  error?: WimzError;
}

export interface EpochChangedNotice {
  type: 'epoch_changed';
  device_id: string;
  previous: number;
  epoch: number;
}

export interface GapNotice {
  type: 'gap';
  device_id: string;
  epoch: number;
  from_seq: number;
  to_seq: number;
}

/** What a subscription's `messages()` iterator yields. */
export type SubscriptionMessage =
  | EventFrame | SubscribedFrame | RecoveredFrame | UnsubscribedNotice | EpochChangedNotice | GapNotice;

export interface CommandResult {
  type: 'command_result';
  id: string;
  ok: boolean;
  data?: unknown;
  reply_to?: string;
  [k: string]: unknown;
}

export interface Device {
  device_id: string;
  name: string;
  online: boolean;
  last_seen: number | null;
  mode: unknown;
  mission: MissionProgress | null;
}

/** Relay-issued TURN credentials (PROTOCOL §4). */
export interface TurnCredentials {
  urls: string[];
  username: string;
  credential: string;
  ttl: number;
  expires_at: number;
  ice_servers: RTCIceServerLike[];
}

export interface RTCIceServerLike {
  urls: string | string[];
  username?: string;
  credential?: string;
}

// ---- backoff ----------------------------------------------------------------

export interface BackoffOptions {
  /** First step (ms). Default 500. */
  minDelayMs?: number;
  /** Cap (ms). Default 30000. */
  maxDelayMs?: number;
  /** A connection open this long resets the attempts. Default 10000. */
  stableAfterMs?: number;
  /** Give up after this many attempts. Default Infinity. */
  maxAttempts?: number;
  random?: () => number;
}

export const BACKOFF_DEFAULTS: Readonly<Required<Omit<BackoffOptions, 'random'>>>;

export class Backoff {
  constructor(opts?: BackoffOptions);
  minDelayMs: number;
  maxDelayMs: number;
  stableAfterMs: number;
  maxAttempts: number;
  attempts: number;
  readonly exhausted: boolean;
  /** min(maxDelayMs, minDelayMs * 2^n) */
  ceiling(n: number): number;
  /** A delay in [ceiling/2, ceiling]; counts the attempt. */
  next(): number;
  reset(): void;
}

// ---- client -------------------------------------------------------------------

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ClientOptions {
  /** The relay's http(s) base URL (a path prefix is kept). Default: this page's origin. */
  url?: string;
  token?: string;
  /** Called for a new token when the current one expires or is refused; null = signed out. */
  getToken?: () => Promise<string | null | undefined>;
  reconnect?: BackoffOptions;
  /** Default 15000. */
  commandTimeoutMs?: number;
  /** Default 15000. */
  connectTimeoutMs?: number;
  /** Default 25000. */
  pingIntervalMs?: number;
  /** Default 10000. */
  pongTimeoutMs?: number;
  /** Default 60000 (with getToken). */
  refreshBeforeMs?: number;
  /** Close codes that end reconnecting. Default [4001, 4003]. */
  finalCloseCodes?: readonly number[];
  WebSocket?: new (url: string) => WebSocketLike;
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  timers?: Timers;
  now?: () => number;
  random?: () => number;
}

export const CLIENT_DEFAULTS: Readonly<Required<Pick<ClientOptions,
  'commandTimeoutMs' | 'connectTimeoutMs' | 'pingIntervalMs' | 'pongTimeoutMs' | 'refreshBeforeMs' | 'finalCloseCodes'>>>;

export interface WebSocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type ClientState = 'disconnected' | 'connecting' | 'connected';

export interface ClientEvents {
  state: { state: ClientState; previous: ClientState };
  connecting: { attempt: number; delayMs: number; reason: string };
  connected: Record<string, never>;
  /** Each socket that closed: `final` when no reconnect follows. */
  connection_lost: { code: number; reason: string; wasOpen: boolean; final: boolean };
  /** The client stopped for good (close(), a final close code, a refused or expired token, attempts used up). */
  disconnected: { code: number | string; reason: string; final: true };
  token_expired: { expiresAt: number | null };
  token_refreshed: { expiresAt: number | null };
  unauthorized: { path?: string };
  /** Every delivered event of every subscription (after de-duplication). */
  event: EventFrame;
  /** Every frame received, as parsed. */
  frame: Record<string, unknown> & { type: string };
  /** Frames of a type the client does not know. */
  message: Record<string, unknown> & { type: string };
  /** Errors not tied to a call (relay errors without a known ref, bad frames). */
  error: WimzError;
  listener_error: { event: string; error: unknown };
  [k: string]: unknown;
}

export interface RequestOptions extends Omit<RequestInit, 'body'> {
  /** A plain object is sent as JSON. */
  body?: BodyInit | Record<string, unknown> | null;
  /** Becomes the query string. */
  query?: Record<string, string | number | boolean>;
}

export function relayBases(url?: string): { http: string; ws: string };

export class WimzClient extends Emitter<ClientEvents> {
  constructor(opts?: ClientOptions);
  readonly baseUrl: string;
  readonly wsBaseUrl: string;
  state: ClientState;
  token: string | null;
  /** Unix ms, from the token's `exp`. */
  tokenExpiresAt: number | null;
  readonly tokenExpired: boolean;
  userId?: string;
  backoff: Backoff;

  login(username: string, password: string): Promise<{ accessToken: string; expiresAtMs: number | null; userId: string }>;
  setToken(token: string, expiresAtMs?: number | null): void;
  connect(): void;
  /** Resolves once connected. */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;

  /** The subscription to a device (made if new); `from` resumes a saved position. */
  subscribe(deviceId: string, from?: { since_seq: number; epoch?: number }): DeviceSubscription;
  subscription(deviceId: string): DeviceSubscription | undefined;

  /** Resolved by the robot's `command_result`; rejected with WimzError (robot_offline, timeout, disconnected, ...). */
  command(deviceId: string, command: string, data?: unknown, opts?: { timeoutMs?: number }): Promise<CommandResult>;

  video(deviceId: string, opts?: VideoOptions): VideoSession;

  request(path: string, init?: RequestOptions): Promise<Response>;
  requestJson<T = unknown>(path: string, init?: RequestOptions): Promise<T>;
  devices(): Promise<Device[]>;
  /** `ANY /api/devices/{id}/robot/{path}`, fetch-like. */
  robotFetch(deviceId: string, path: string, init?: RequestOptions): Promise<Response>;
  robotJson<T = unknown>(deviceId: string, path: string, init?: RequestOptions): Promise<T>;
}

// ---- subscriptions -----------------------------------------------------------

export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

export interface SnapshotView extends Snapshot {
  device_id: string;
  online: boolean | null;
}

export interface SubscriptionEvents {
  state: { state: SubscriptionState; previous: SubscriptionState };
  subscribed: SubscribedFrame;
  event: EventFrame;
  recovered: RecoveredFrame;
  epoch_changed: EpochChangedNotice;
  gap: GapNotice;
  unsubscribed: UnsubscribedNotice;
  snapshot: SnapshotView;
  error: WimzError;
  [k: string]: unknown;
}

export class DeviceSubscription extends Emitter<SubscriptionEvents> {
  readonly deviceId: string;
  state: SubscriptionState;
  robotOnline: boolean | null;
  snapshot: Snapshot;
  sequence: EventSequence;
  /** The last delivered `(epoch, seq)`. */
  readonly position: { epoch: number | null; seq: number };
  onEvent(name: string, fn: Listener<EventFrame>): () => void;
  /** Events and every notice, in order. */
  messages(opts?: { bufferSize?: number }): AsyncIterableIterator<SubscriptionMessage>;
  /** Event frames only (optionally one name). */
  events(opts?: { name?: string; bufferSize?: number }): AsyncIterableIterator<EventFrame>;
  unsubscribe(): void;
  snapshotView(): SnapshotView;
}

export class EventSequence {
  epoch: number | null;
  seq: number;
  replaying: boolean;
  duplicates: number;
  position(): { epoch: number; since_seq: number } | null;
  subscribed(frame: { device_id?: string; epoch: number; seq: number }, replayFollows: boolean): Array<EpochChangedNotice | GapNotice>;
  event(frame: { device_id?: string; epoch?: number; seq?: number; unnumbered?: boolean }): { deliver: boolean; notices: Array<EpochChangedNotice | GapNotice> };
  recovered(): void;
}

// ---- WebRTC ---------------------------------------------------------------------

export interface ConnectionInfo {
  connectionType: 'direct' | 'relay';
  localCandidateType: string | null;
  remoteCandidateType: string | null;
  protocol: string | null;
  relayProtocol: string | null;
  rttMs: number | null;
}

export interface Metrics {
  rttMs: number | null;
  lossPct: number | null;
  jitterMs: number | null;
  fps: number | null;
  framesDecoded: number | null;
  packetsReceived: number | null;
  packetsLost: number | null;
  frameWidth: number | null;
  frameHeight: number | null;
  timestamp: number | null;
}

export type StatsReportLike = Map<string, Record<string, unknown>> | ReadonlyArray<Record<string, unknown>> | Record<string, Record<string, unknown>>;

export function statsList(report: StatsReportLike): Array<Record<string, any>>;
export function selectedCandidatePair(report: StatsReportLike): Record<string, any> | null;
export function connectionInfo(report: StatsReportLike): ConnectionInfo | null;
export function extractMetrics(report: StatsReportLike, previous?: Metrics | null): Metrics;

export interface QualityRule {
  warn: number;
  clear: number;
  worse?: 'above' | 'below';
}

export interface QualityOptions {
  rttMs?: Partial<QualityRule> | null;
  lossPct?: Partial<QualityRule> | null;
  jitterMs?: Partial<QualityRule> | null;
  fps?: Partial<QualityRule> | null;
  raiseAfter?: number;
  clearAfter?: number;
}

export const QUALITY_DEFAULTS: Readonly<{
  rttMs: QualityRule; lossPct: QualityRule; jitterMs: QualityRule; fps: QualityRule;
  raiseAfter: number; clearAfter: number;
}>;
export const QUALITY_METRICS: readonly ['rttMs', 'lossPct', 'jitterMs', 'fps'];

export type QualityMetric = 'rttMs' | 'lossPct' | 'jitterMs' | 'fps';

export interface QualityEvents {
  warning: { metric: QualityMetric; value: number; threshold: number; metrics: Metrics };
  cleared: { metric: QualityMetric; value: number; threshold: number; metrics: Metrics };
  quality: { level: 'good' | 'poor'; warnings: QualityMetric[]; metrics: Metrics | null };
  [k: string]: unknown;
}

export class QualityMonitor extends Emitter<QualityEvents> {
  constructor(opts?: QualityOptions);
  level: 'good' | 'poor';
  readonly warnings: QualityMetric[];
  update(metrics: Partial<Metrics>): QualityMetric[];
  reset(): void;
}

export interface VideoOptions {
  iceTransportPolicy?: 'all' | 'relay';
  statsIntervalMs?: number;
  reportIntervalMs?: number;
  disconnectedGraceMs?: number;
  maxIceRestarts?: number;
  restartTimeoutMs?: number;
  connectTimeoutMs?: number;
  iceGatheringTimeoutMs?: number;
  quality?: QualityOptions;
  RTCPeerConnection?: new (config: unknown) => unknown;
}

export const VIDEO_DEFAULTS: Readonly<Required<Omit<VideoOptions, 'quality' | 'RTCPeerConnection'>>>;

export type VideoState = 'new' | 'requesting' | 'negotiating' | 'connected' | 'restarting' | 'closed';

export interface VideoEvents extends QualityEvents {
  state: { state: VideoState; previous: VideoState };
  track: { track: MediaStreamTrack; stream: MediaStream | null };
  connection_type: ConnectionInfo;
  stats: Metrics;
  ice_restart: { attempt: number; max: number; reason: string; manual: boolean };
  ice_restarted: { restarts: number };
  /** `reason`: the relay's (timeout, idle_timeout, robot_disconnected, device_deleted), the robot's, or ours (ice_failed, connect_timeout, signaling_lost, negotiation_failed, closed_by_app, ...). */
  closed: { reason: string; by: 'local' | 'remote' };
  error: WimzError;
}

export function iceServersOf(credentials: Partial<TurnCredentials> | null | undefined): RTCIceServerLike[];

export class VideoSession extends Emitter<VideoEvents> {
  readonly deviceId: string;
  state: VideoState;
  sessionId: string | null;
  credentials: TurnCredentials | null;
  pc: RTCPeerConnection | null;
  stream: MediaStream | null;
  connectionType: 'direct' | 'relay' | null;
  connectionInfo: ConnectionInfo | null;
  metrics: Metrics | null;
  monitor: QualityMonitor;
  closeReason: string | null;
  iceRestarts: number;
  /** Resolves when media is connected. */
  start(): Promise<VideoSession>;
  restartIce(): Promise<void>;
  close(reason?: string): void;
  getConnectionType(): Promise<ConnectionInfo | null>;
}

// ---- token ------------------------------------------------------------------------

export function tokenExpiresAtMs(token: string): number | null;
export function login(
  fetchFn: (input: string, init?: RequestInit) => Promise<Response>,
  baseUrl: string, username: string, password: string, now?: () => number,
): Promise<{ accessToken: string; expiresAtMs: number | null; userId: string }>;
