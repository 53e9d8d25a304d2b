// ferrocast publish/play module: WHIP publishing and WHEP playback for any page, no build step.
//
//   import { Publisher, Player } from 'https://your-server/ferrocast.js';
//
//   const publisher = new Publisher({ url: 'https://your-server/whip/main', token: 'fcp_…' });
//   publisher.addEventListener('state', (e) => console.log(e.detail.state));
//   await publisher.start(await navigator.mediaDevices.getUserMedia({ video: true, audio: true }));
//   await publisher.setMediaStream(canvas.captureStream(30)); // swap sources live, no renegotiation
//   await publisher.stop();
//
//   const player = new Player({ url: 'https://your-server/whep/abc123/main', video: videoElement });
//   await player.play(); // waits while the stream is not live, reconnects after a drop
//
// ICE: the offer is sent at once, before gathering, and candidates follow in PATCH requests
// (`application/trickle-ice-sdpfrag`) as the browser finds them; the server answers with its own
// candidates in the answer. The STUN/TURN servers the server names in its `Link: <…>;
// rel="ice-server"` headers (RFC 9725 §4.6, with short-lived TURN credentials) are given to the
// browser before it starts gathering; an `iceServers` option replaces them.
//
// A Publisher keeps its broadcast going by itself: when the connection fails (or stays
// disconnected), it publishes again to the same stream and source with backoff (1, 2, 4, 8 s),
// emitting `reconnecting`; the server's seamless replacement keeps viewers connected.

/** An HTTP refusal from a WHIP/WHEP endpoint, with its status and the server's reason. */
export class SignalingError extends Error {
  /**
   * @param {number} status HTTP status (401, 403, 404, 406, 415, 503, …)
   * @param {string} message the server's plain-text reason
   * @param {number|null} retryAfter seconds from `Retry-After`, when given
   */
  constructor(status, message, retryAfter = null) {
    super(message || `HTTP ${status}`);
    this.name = 'SignalingError';
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long an offer's POST may take (the server answers in well under a second). */
const POST_TIMEOUT_MS = 8_000;

/** Parses `Link` headers into [{ url, rel, params }] (RFC 8288, enough for WHIP/WHEP). */
export function parseLinks(header, base) {
  if (!header) return [];
  const links = [];
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = part.match(/<([^>]*)>(.*)/);
    if (!match) continue;
    const params = {};
    for (const p of match[2].split(';')) {
      // Split at the first '=' only: base64 credentials end in '='.
      const at = p.indexOf('=');
      const k = (at < 0 ? p : p.slice(0, at)).trim();
      const v = at < 0 ? '' : p.slice(at + 1).trim();
      if (k) params[k.toLowerCase()] = v.replace(/^"|"$/g, '');
    }
    links.push({ url: new URL(match[1], base).href, rel: params.rel, params });
  }
  return links;
}

/** The `RTCIceServer`s of `rel="ice-server"` links (RFC 9725 §4.6). */
export function iceServersFromLinks(links) {
  return links.filter((l) => l.rel === 'ice-server').map((l) => ({
    urls: l.url,
    ...(l.params.username !== undefined && { username: l.params.username }),
    ...(l.params.credential !== undefined && { credential: l.params.credential }),
  }));
}

/** An `RTCConfiguration` from the module's options (`iceServers`, and `iceTransportPolicy` for tests). */
function rtcConfiguration(options) {
  return {
    iceServers: options.iceServers ?? [],
    ...(options.iceTransportPolicy && { iceTransportPolicy: options.iceTransportPolicy }),
  };
}

/**
 * One WebRTC session against a WHIP or WHEP endpoint: POST the offer, apply the answer, trickle
 * candidates, DELETE at the end.
 */
class Session {
  /** `useLinkedIceServers`: take the ICE servers from the answer's Link headers (no `iceServers` option). */
  constructor(pc, endpoint, token, useLinkedIceServers) {
    this.pc = pc;
    this.endpoint = endpoint;
    this.token = token;
    this.useLinkedIceServers = useLinkedIceServers;
    this.location = null;
    this.etag = null;
    this.links = [];
    this.pending = [];
    this.pc.addEventListener('icecandidate', (event) => {
      this.pending.push(event.candidate);
      if (this.location && this.pending.length === 1) queueMicrotask(() => this.flush());
    });
  }

  headers(contentType) {
    const headers = { 'content-type': contentType };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  /**
   * Sends the offer (without candidates) and applies the answer. The offer is set as the local
   * description only after the answer arrived: gathering starts there, and by then the browser
   * knows the ICE servers the answer's Link headers name.
   */
  async negotiate(mungeOffer = (sdp) => sdp) {
    const offer = await this.pc.createOffer();
    offer.sdp = mungeOffer(offer.sdp);
    // Bounded: a request lost to a dead network is abandoned (and a reconnecting Publisher tries
    // again with a fresh connection) rather than left to TCP's ever longer retransmissions.
    const response = await fetch(this.endpoint, {
      method: 'POST', headers: this.headers('application/sdp'), body: offer.sdp, signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
    if (response.status !== 201) {
      const retry = Number(response.headers.get('retry-after'));
      throw new SignalingError(response.status, (await response.text()).trim(), Number.isFinite(retry) && retry > 0 ? retry : null);
    }
    this.location = new URL(response.headers.get('location'), this.endpoint).href;
    this.etag = response.headers.get('etag');
    this.links = parseLinks(response.headers.get('link'), this.endpoint);
    const answer = await response.text();
    if (this.useLinkedIceServers) {
      const iceServers = iceServersFromLinks(this.links);
      if (iceServers.length) this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    }
    await this.pc.setLocalDescription(offer);
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await this.flush();
  }

  /** PATCHes the candidates gathered so far. */
  async flush() {
    if (!this.location || !this.pending.length) return;
    const candidates = this.pending.splice(0);
    const sdp = this.pc.localDescription.sdp;
    const ufrag = sdp.match(/a=ice-ufrag:(.*)\r\n/)?.[1];
    const pwd = sdp.match(/a=ice-pwd:(.*)\r\n/)?.[1];
    const mid = sdp.match(/a=mid:(.*)\r\n/)?.[1] ?? '0';
    let body = `a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:${mid}\r\n`;
    for (const c of candidates) body += c ? `a=${c.candidate}\r\n` : 'a=end-of-candidates\r\n';
    const headers = this.headers('application/trickle-ice-sdpfrag');
    if (this.etag) headers['if-match'] = this.etag;
    try {
      await fetch(this.location, { method: 'PATCH', headers, body });
    } catch {
      // Trickle is best effort: the server learns the address from ICE checks anyway.
    }
  }

  link(rel) {
    return this.links.find((l) => l.rel === rel)?.url ?? null;
  }

  /** Closes the connection and ends the session on the server (best effort). */
  async close() {
    this.pc.close();
    await this.end();
  }

  /** DELETE on the session; the server also ends it by itself when ICE stops. */
  async end() {
    const location = this.location;
    this.location = null;
    if (!location) return;
    try {
      await fetch(location, { method: 'DELETE', headers: this.token ? { authorization: `Bearer ${this.token}` } : {} });
    } catch {
      // Unreachable server: its ICE timeout ends the session.
    }
  }
}

/** Delays before publishing again after a drop, in seconds, by attempt (the last repeats). */
const RECONNECT_DELAYS = [1, 2, 4, 8];
/** How long `disconnected` may last before the connection counts as dropped. */
const DISCONNECTED_GRACE_MS = 3_000;
/** How long a new connection may take to connect. */
const CONNECT_TIMEOUT_MS = 15_000;

/** Whether an attempt that failed may be tried again: a network error, a timeout or a server error. */
function retryable(error) {
  if (!(error instanceof SignalingError)) return true;
  return error.status >= 500 || error.status === 408 || error.status === 429;
}

/**
 * Resolves when `pc` has dropped: `failed` or `closed`, `disconnected` for longer than
 * DISCONNECTED_GRACE_MS, or never connected within CONNECT_TIMEOUT_MS; or when `cancel` fires.
 */
function dropped(pc, cancel) {
  return new Promise((resolve) => {
    let graceTimer = null;
    const done = () => {
      clearTimeout(graceTimer);
      clearTimeout(connectTimer);
      pc.removeEventListener('connectionstatechange', check);
      cancel.removeEventListener('abort', done);
      resolve();
    };
    const check = () => {
      const state = pc.connectionState;
      if (state === 'failed' || state === 'closed') return done();
      if (state === 'disconnected') graceTimer ??= setTimeout(done, DISCONNECTED_GRACE_MS);
      else { clearTimeout(graceTimer); graceTimer = null; }
      if (state === 'connected') clearTimeout(connectTimer);
    };
    const connectTimer = setTimeout(() => pc.connectionState !== 'connected' && done(), CONNECT_TIMEOUT_MS);
    pc.addEventListener('connectionstatechange', check);
    cancel.addEventListener('abort', done);
    check();
  });
}

/** Sleeps `ms`, or less when `cancel` fires. */
function pause(ms, cancel) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    cancel.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Summarises `getStats()` for the kind given (inbound or outbound). */
async function summarize(pc, previous, direction) {
  const report = await pc.getStats();
  const now = performance.now();
  const out = { bitrateKbps: 0, fps: 0, width: 0, height: 0, rttMs: null, packetsLost: 0, framesDecoded: 0, bytes: 0 };
  report.forEach((s) => {
    if (s.type === `${direction}-rtp`) {
      out.bytes += (direction === 'inbound' ? s.bytesReceived : s.bytesSent) ?? 0;
      out.packetsLost += s.packetsLost ?? 0;
      if (s.kind === 'video') {
        out.fps = s.framesPerSecond ?? out.fps;
        out.width = s.frameWidth ?? out.width;
        out.height = s.frameHeight ?? out.height;
        out.framesDecoded = s.framesDecoded ?? out.framesDecoded;
      }
    }
    if (s.type === 'remote-inbound-rtp' && s.roundTripTime != null) out.rttMs = Math.round(s.roundTripTime * 1000);
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null && out.rttMs == null) {
      out.rttMs = Math.round(s.currentRoundTripTime * 1000);
    }
  });
  if (previous) out.bitrateKbps = Math.max(0, Math.round(((out.bytes - previous.bytes) * 8) / (now - previous.at)));
  out.at = now;
  return out;
}

function setState(target, state, extra = {}) {
  target.state = state;
  target.dispatchEvent(new CustomEvent('state', { detail: { state, ...extra } }));
}

/** Adds `stereo=1;sprop-stereo=1` to the Opus format line. */
function stereoOpus(sdp) {
  const pt = sdp.match(/a=rtpmap:(\d+) opus\/48000\/2/i)?.[1];
  if (!pt) return sdp;
  return sdp.replace(new RegExp(`a=fmtp:${pt} (.*)\r\n`), (line, params) =>
    params.includes('stereo=1') ? line : `a=fmtp:${pt} ${params};stereo=1;sprop-stereo=1\r\n`);
}

/**
 * Publishes a `MediaStream` to a WHIP endpoint, and keeps publishing through network trouble.
 *
 * Events: `state` (`detail.state`: `connecting`, `live`, `reconnecting` (`detail.attempt`),
 * `stopped`, `failed`), `error` (`detail.error`: a {@link SignalingError} or another Error).
 *
 * Reconnection has one owner, {@link Publisher#supervise}: after a drop (ICE `failed`,
 * `disconnected` for 3 s, no connection within 15 s) it publishes again with backoff 1, 2, 4, 8 s
 * (a longer `Retry-After` wins), retrying network errors and 5xx; any other refusal (401, 403, …)
 * stops it with `failed` and the server's reason. The old session is ended once the new one
 * answered, so the server's replacement takes over at the new one's first keyframe.
 */
export class Publisher extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url WHIP endpoint, e.g. `https://host/whip/main`
   * @param {string|(() => Promise<string>)} options.token publish token (`fcp_…`) or a short-lived
   *   grant; or a function giving a fresh one, called before every (re)connection
   * @param {string} [options.sourceId] multisource: this feed's source id
   * @param {string} [options.codec] preferred video codec: `H264`, `VP8`, `VP9` or `AV1`
   * @param {number} [options.maxBitrateKbps] video bitrate cap
   * @param {boolean} [options.stereo] stereo Opus
   * @param {boolean} [options.simulcast] send three layers (RIDs `h`, `m`, `l` at full, ½ and ¼
   *   resolution) so that viewers on weaker links get a smaller one; Chromium-based browsers
   * @param {RTCIceServer[]} [options.iceServers] instead of the server's `Link` headers
   * @param {RTCIceTransportPolicy} [options.iceTransportPolicy] for tests: `relay` forces TURN
   */
  constructor(options) {
    super();
    this.options = options;
    this.state = 'idle';
    this.session = null;
    this.stats = null;
    this.cancel = null;
  }

  /** The endpoint with `?sourceId=` when set. */
  get endpoint() {
    const url = new URL(this.options.url, location.href);
    if (this.options.sourceId) url.searchParams.set('sourceId', this.options.sourceId);
    return url.href;
  }

  /**
   * Starts publishing; resolves once the server answered (the state turns `live` when media
   * flows). A first attempt that fails rejects; drops after that are reconnected.
   */
  async start(stream) {
    if (this.cancel) throw new Error('already publishing');
    this.stream = stream;
    const cancel = new AbortController();
    this.cancel = cancel;
    setState(this, 'connecting');
    try {
      this.session = await this.connect();
    } catch (error) {
      this.cancel = null;
      this.fail(error);
      throw error;
    }
    this.supervise(cancel.signal);
  }

  /** One WHIP session for the current stream: a new connection, negotiated. */
  async connect() {
    const pc = new RTCPeerConnection(rtcConfiguration(this.options));
    const transceivers = {};
    for (const kind of ['audio', 'video']) {
      const track = this.stream.getTracks().find((t) => t.kind === kind) ?? null;
      const init = { direction: 'sendonly', streams: [this.stream] };
      if (kind === 'video' && this.options.simulcast) init.sendEncodings = simulcastEncodings(this.options.maxBitrateKbps);
      const transceiver = pc.addTransceiver(track ?? kind, init);
      transceivers[kind] = transceiver;
      if (kind === 'video' && this.options.codec && RTCRtpSender.getCapabilities) {
        const wanted = `video/${this.options.codec}`.toLowerCase();
        const codecs = RTCRtpSender.getCapabilities('video').codecs;
        const sorted = [...codecs.filter((c) => c.mimeType.toLowerCase() === wanted), ...codecs.filter((c) => c.mimeType.toLowerCase() !== wanted)];
        try { transceiver.setCodecPreferences(sorted); } catch { /* unsupported codec list: keep the default */ }
      }
    }
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this.session?.pc && pc.connectionState === 'connected') setState(this, 'live');
    });
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    const session = new Session(pc, this.endpoint, token, !this.options.iceServers);
    try {
      await session.negotiate((sdp) => (this.options.stereo ? stereoOpus(sdp) : sdp));
    } catch (error) {
      pc.close();
      throw error;
    }
    this.transceivers = transceivers;
    this.stats = null;
    if (this.options.maxBitrateKbps) await this.setMaxBitrate(this.options.maxBitrateKbps, transceivers);
    return session;
  }

  /** Watches the session and replaces it whenever it drops, until `stop()` or a refusal. */
  async supervise(cancel) {
    while (!cancel.aborted) {
      const old = this.session;
      await dropped(old.pc, cancel);
      if (cancel.aborted) return;
      old.pc.close();
      for (let attempt = 1; ; attempt++) {
        setState(this, 'reconnecting', { attempt });
        const backoff = RECONNECT_DELAYS[Math.min(attempt, RECONNECT_DELAYS.length) - 1];
        await pause(Math.max(backoff, this.retryAfter ?? 0) * 1000, cancel);
        this.retryAfter = null;
        if (cancel.aborted) return;
        try {
          const session = await this.connect();
          if (cancel.aborted) { session.close(); return; }
          this.session = session;
          break;
        } catch (error) {
          if (cancel.aborted) return;
          if (!retryable(error)) {
            this.cancel = null;
            this.session = null;
            this.fail(error);
            return;
          }
          this.retryAfter = error.retryAfter;
          this.dispatchEvent(new CustomEvent('error', { detail: { error, attempt } }));
        }
      }
      old.end();
    }
  }

  /** Caps the video bitrate (works while live). */
  async setMaxBitrate(kbps, transceivers = this.transceivers) {
    this.options.maxBitrateKbps = kbps;
    const sender = transceivers?.video?.sender;
    if (!sender) return;
    const params = sender.getParameters();
    params.encodings = params.encodings?.length ? params.encodings : [{}];
    const shares = Object.fromEntries(simulcastEncodings(kbps).map((e) => [e.rid, e.maxBitrate]));
    for (const e of params.encodings) e.maxBitrate = shares[e.rid] ?? kbps * 1000;
    await sender.setParameters(params);
  }

  /** Replaces the published tracks with those of `stream`, without renegotiation. */
  async setMediaStream(stream) {
    this.stream = stream;
    if (!this.session) return;
    for (const kind of ['audio', 'video']) {
      const track = stream.getTracks().find((t) => t.kind === kind) ?? null;
      await this.transceivers[kind].sender.replaceTrack(track);
      this.transceivers[kind].sender.setStreams?.(stream);
    }
  }

  /** `{ bitrateKbps, fps, width, height, rttMs, packetsLost }` of what is being sent (null while reconnecting). */
  async getStats() {
    if (!this.session || this.session.pc.connectionState === 'closed') return null;
    this.stats = await summarize(this.session.pc, this.stats, 'outbound');
    return this.stats;
  }

  /** Ends the feed (DELETE on the session) and any reconnection. */
  async stop() {
    this.cancel?.abort();
    this.cancel = null;
    const session = this.session;
    this.session = null;
    if (session) await session.close();
    setState(this, 'stopped');
  }

  fail(error) {
    setState(this, 'failed', { error });
    this.dispatchEvent(new CustomEvent('error', { detail: { error } }));
  }
}

/**
 * The simulcast layers a Publisher sends, lowest first: RIDs `l`, `m`, `h` at ¼, ½ and full
 * resolution. Their bitrates share the cap (5 %, 20 %, 75 %: roughly what each resolution needs
 * for the same quality), so the three together never exceed it.
 */
export function simulcastEncodings(maxBitrateKbps) {
  const layers = [['l', 4, 0.05], ['m', 2, 0.2], ['h', 1, 0.75]];
  return layers.map(([rid, scaleResolutionDownBy, share]) => {
    const encoding = { rid, scaleResolutionDownBy };
    if (maxBitrateKbps) encoding.maxBitrate = Math.round(maxBitrateKbps * 1000 * share);
    return encoding;
  });
}

/**
 * Plays a WHEP stream into a `<video>`, waiting while it is not live and reconnecting after a drop.
 * A refusal to watch at all (401, 403: say, a page outside the stream's embed list) ends `play()`
 * with `failed` and an `error` event instead of retrying.
 *
 * Events: `state` (`connecting`, `waiting` (not live), `playing`, `reconnecting`, `stopped`,
 * `failed`), `error`, and the server's extension events: `active`, `inactive`, `viewercount`
 * (`detail.viewercount`), `sources` (`detail.sources`, `detail.pairs`).
 */
export class Player extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url WHEP endpoint, e.g. `https://host/whep/abc123/main`
   * @param {HTMLVideoElement} [options.video] gets pair 0's stream
   * @param {number} [options.pairs] audio/video pairs to ask for (multi-view), default 1
   * @param {string} [options.sourceId] the source for pair 0 (default: main)
   * @param {string} [options.quality] pair 0's simulcast layer: `auto` (default), `high`,
   *   `medium` or `low`
   * @param {boolean} [options.reconnect] default true
   * @param {string|(() => Promise<string>)} [options.token] for a secure stream: a subscribe token
   *   (`fcs_…`) or viewer grant (`fcv_…`), or a function returning one, called before every attempt
   * @param {RTCIceServer[]} [options.iceServers] instead of the server's `Link` headers
   * @param {RTCIceTransportPolicy} [options.iceTransportPolicy] for tests: `relay` forces TURN
   */
  constructor(options) {
    super();
    this.options = { pairs: 1, reconnect: true, ...options };
    this.state = 'idle';
    this.session = null;
    this.streams = [];
    this.stats = null;
    this.stopped = false;
  }

  get endpoint() {
    const url = new URL(this.options.url, location.href);
    if (this.options.sourceId) url.searchParams.set('sourceId', this.options.sourceId);
    return url.href;
  }

  /** Connects, and keeps connecting until `stop()`. */
  async play() {
    this.stopped = false;
    while (!this.stopped) {
      try {
        await this.connect();
        await this.untilDropped();
        if (this.stopped || !this.options.reconnect) break;
        setState(this, 'reconnecting');
        await sleep(500);
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof SignalingError && (error.status === 404 || error.status === 503) && this.options.reconnect) {
          setState(this, 'waiting', { error });
          await this.waitUntilLive(error.retryAfter ?? 2);
          continue;
        }
        setState(this, 'failed', { error });
        this.dispatchEvent(new CustomEvent('error', { detail: { error } }));
        if (!this.options.reconnect) throw error;
        // Not allowed to watch (from this site, or without a token): asking again changes nothing.
        if (error instanceof SignalingError && (error.status === 401 || error.status === 403)) break;
        await sleep(2000);
      }
    }
  }

  async connect() {
    setState(this, 'connecting');
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    const pc = new RTCPeerConnection(rtcConfiguration(this.options));
    this.streams = [];
    for (let i = 0; i < this.options.pairs; i++) {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
    }
    pc.addEventListener('track', (event) => {
      const stream = event.streams[0];
      if (!stream) return;
      const pair = Number(stream.id.match(/(\d+)$/)?.[1] ?? 0);
      this.streams[pair] = stream;
      if (pair === 0 && this.options.video && this.options.video.srcObject !== stream) this.options.video.srcObject = stream;
      this.dispatchEvent(new CustomEvent('track', { detail: { pair, stream, track: event.track } }));
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'connected' && pc === this.session?.pc) setState(this, 'playing');
    });
    this.session = new Session(pc, this.endpoint, token ?? null, !this.options.iceServers);
    try {
      await this.session.negotiate();
    } catch (error) {
      pc.close();
      this.session = null;
      throw error;
    }
    this.listen();
    const quality = this.options.quality ?? 'auto';
    if (quality !== 'auto') {
      this.selectLayer(0, quality).catch((error) => this.dispatchEvent(new CustomEvent('error', { detail: { error } })));
    }
  }

  /** Resolves when the connection drops (as for a Publisher: failed, disconnected 3 s, never connected) or on stop(). */
  untilDropped() {
    const pc = this.session?.pc;
    if (!pc || this.stopped) return Promise.resolve();
    const cancel = new AbortController();
    const stop = () => cancel.abort();
    this.addEventListener('stopping', stop, { once: true });
    return dropped(pc, cancel.signal).finally(() => this.removeEventListener('stopping', stop));
  }

  /** Waits for the public stream feed to say live (or `seconds`, whichever first). */
  async waitUntilLive(seconds) {
    // The feed lives on the WHEP server's origin, not the page's: the module may be used from
    // another site (the server answers the feed with CORS).
    const endpoint = new URL(this.options.url, location.href);
    const match = endpoint.pathname.match(/\/whep\/([^/]+)\/([^/]+)/);
    if (!match || typeof EventSource === 'undefined') return sleep(seconds * 1000);
    const feed = new EventSource(new URL(`/api/v1/streams/${match[1]}/${match[2]}/events`, endpoint).href);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(seconds, 10) * 1000);
      feed.addEventListener('stream', (event) => {
        const state = JSON.parse(event.data);
        const wanted = this.options.sourceId ?? null;
        if (state.live && state.sources.some((s) => s.active && (s.sourceId ?? null) === wanted || (wanted === null && s.active))) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.addEventListener('stopping', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    feed.close();
  }

  /** Follows the session's server-sent events (WHEP extension), if the server offers them. */
  listen() {
    this.events?.close();
    const url = this.session?.link('urn:ietf:params:whep:ext:core:server-sent-events');
    if (!url || typeof EventSource === 'undefined') return;
    const events = new EventSource(url);
    this.events = events;
    for (const name of ['active', 'inactive', 'viewercount', 'sources']) {
      events.addEventListener(name, (event) => {
        let detail = {};
        try { detail = JSON.parse(event.data); } catch { /* keep {} */ }
        this.dispatchEvent(new CustomEvent(name, { detail }));
      });
    }
    events.onerror = () => {
      if (this.session?.pc.connectionState === 'closed') events.close();
    };
  }

  /** Shows `sourceId` (`null` = main) in `pair`, through the server's layer extension. */
  async selectSource(pair, sourceId) {
    const url = this.session?.link('urn:ietf:params:whep:ext:core:layer');
    if (!url) throw new Error('the server offers no source selection');
    const response = await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pair, sourceId }),
    });
    if (!response.ok) throw new SignalingError(response.status, (await response.text()).trim());
  }

  /**
   * Shows simulcast layer `layer` (`auto`, `high`, `medium`, `low`) in `pair`, in place: the
   * server switches at the layer's next keyframe. Pair 0's choice is kept across reconnections.
   */
  async selectLayer(pair, layer) {
    if (pair === 0) this.options.quality = layer;
    const url = this.session?.link('urn:ietf:params:whep:ext:core:layer');
    if (!url) throw new Error('the server offers no layer selection');
    const response = await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pair, layer }),
    });
    if (!response.ok) throw new SignalingError(response.status, (await response.text()).trim());
  }

  async getStats() {
    if (!this.session) return null;
    this.stats = await summarize(this.session.pc, this.stats, 'inbound');
    return this.stats;
  }

  async stop() {
    this.stopped = true;
    this.dispatchEvent(new Event('stopping'));
    this.events?.close();
    const session = this.session;
    this.session = null;
    if (session) await session.close();
    setState(this, 'stopped');
  }
}
