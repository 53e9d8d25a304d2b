// The online broadcaster (/tokens/{id}/broadcast). The Leptos page renders an empty frame; this
// module fills it once the page is hydrated, and publishes with public/ferrocast.js using a
// short-lived grant from POST /api/v1/tokens/{id}/grants (the token's secret stays on the server).

import { Publisher, SignalingError } from './ferrocast.js';
import { hydrated } from './hydrated.js';
import { mountConnectionTest } from './self-check.js';

const root = document.getElementById('broadcaster');

const SIZES = { '640x360': [640, 360], '640x480': [640, 480], '1280x720': [1280, 720], '1920x1080': [1920, 1080] };
const MIXER_SIZE = [1280, 720];

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const $ = (id) => document.getElementById(id);

/** Browser and server errors in words, with what to do. */
export function explain(error) {
  if (error instanceof SignalingError) {
    const hints = {
      401: 'Reload the page to get a new grant.',
      403: 'Check the token on the Tokens page: it may be disabled, expired, or not allow this stream name or source.',
      406: 'Pick another codec in Settings.',
      503: `The server is at a limit; try again${error.retryAfter ? ` in ${error.retryAfter} s` : ' shortly'}.`,
    };
    return `The server refused to go live (${error.status}): ${error.message}. ${hints[error.status] ?? ''}`.trim();
  }
  switch (error?.name) {
    case 'NotAllowedError':
      return 'Access to the camera, microphone or screen was blocked. Allow it in the browser (the camera icon in the address bar), then try again.';
    case 'NotFoundError':
      return 'No camera or microphone was found. Connect one, or choose the Screen or Mixer source.';
    case 'NotReadableError':
      return 'The camera or microphone is in use by another application. Close it and try again.';
    case 'OverconstrainedError':
      return 'The camera cannot capture with these settings. Pick a smaller capture size or frame rate in Settings.';
    case 'AbortError':
      return 'Capturing was cancelled.';
    default:
      return error?.message ? `Something went wrong: ${error.message}` : 'Something went wrong.';
  }
}

async function getJSON(path) {
  const response = await fetch(path);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

/** Composes screen (or a colour), a camera picture-in-picture, a logo and a text overlay on a
 * fixed-size canvas, and mixes microphone and screen audio with gains and a level meter. */
class Mixer {
  constructor(fps) {
    this.fps = fps;
    this.canvas = document.createElement('canvas');
    [this.canvas.width, this.canvas.height] = MIXER_SIZE;
    this.ctx = this.canvas.getContext('2d');
    this.tracks = [];
    this.layout = { corner: 'bottom-right', size: 0.3, text: '', background: '#1f2937', logo: null };
  }

  async start({ screen, cameraId, micId, audio }) {
    const grab = async (fn) => { const s = await fn(); this.tracks.push(...s.getTracks()); return s; };
    this.screen = screen ? await grab(() => navigator.mediaDevices.getDisplayMedia({ video: { frameRate: this.fps }, audio: true })) : null;
    this.camera = await grab(() => navigator.mediaDevices.getUserMedia({
      video: { deviceId: cameraId ? { exact: cameraId } : undefined, width: { ideal: 640 } }, audio: false,
    })).catch(() => null);
    const mic = await grab(() => navigator.mediaDevices.getUserMedia({ audio: { ...audio, deviceId: micId ? { exact: micId } : undefined }, video: false }))
      .catch(() => null);
    this.screenVideo = this.screen ? await this.element(this.screen) : null;
    this.cameraVideo = this.camera ? await this.element(this.camera) : null;

    this.audio = new AudioContext();
    const out = this.audio.createMediaStreamDestination();
    this.analyser = this.audio.createAnalyser();
    this.analyser.fftSize = 512;
    this.micGain = this.audio.createGain();
    this.screenGain = this.audio.createGain();
    this.micGain.connect(out);
    this.screenGain.connect(out);
    this.micGain.connect(this.analyser);
    this.screenGain.connect(this.analyser);
    if (mic) this.audio.createMediaStreamSource(mic).connect(this.micGain);
    if (this.screen?.getAudioTracks().length) this.audio.createMediaStreamSource(this.screen).connect(this.screenGain);

    // Timers, not requestAnimationFrame: rAF stops entirely in a hidden tab.
    this.timer = setInterval(() => this.draw(), 1000 / this.fps);
    const video = this.canvas.captureStream(this.fps).getVideoTracks()[0];
    this.tracks.push(video);
    return new MediaStream([video, ...out.stream.getAudioTracks()]);
  }

  async element(stream) {
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    await video.play().catch(() => {});
    return video;
  }

  level() {
    if (!this.analyser) return 0;
    const data = new Uint8Array(this.analyser.fftSize);
    this.analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
    return peak;
  }

  draw() {
    const { ctx, canvas, layout } = this;
    const [w, h] = [canvas.width, canvas.height];
    ctx.fillStyle = layout.background;
    ctx.fillRect(0, 0, w, h);
    const fit = (video, x, y, bw, bh) => {
      if (!video?.videoWidth) return;
      const scale = Math.min(bw / video.videoWidth, bh / video.videoHeight);
      const dw = video.videoWidth * scale;
      const dh = video.videoHeight * scale;
      ctx.drawImage(video, x + (bw - dw) / 2, y + (bh - dh) / 2, dw, dh);
    };
    if (this.screenVideo) fit(this.screenVideo, 0, 0, w, h);
    else if (this.cameraVideo && layout.size >= 1) fit(this.cameraVideo, 0, 0, w, h);
    if (this.cameraVideo && (this.screenVideo || layout.size < 1)) {
      const pw = Math.round(w * Math.min(layout.size, 1));
      const ph = Math.round((pw * 9) / 16);
      const margin = 24;
      const x = layout.corner.endsWith('left') ? margin : w - pw - margin;
      const y = layout.corner.startsWith('top') ? margin : h - ph - margin - (layout.text ? 72 : 0);
      ctx.fillStyle = '#000';
      ctx.fillRect(x - 2, y - 2, pw + 4, ph + 4);
      fit(this.cameraVideo, x, y, pw, ph);
    }
    if (layout.logo) {
      const lw = 160;
      const lh = (layout.logo.height / layout.logo.width) * lw || 80;
      ctx.drawImage(layout.logo, w - lw - 24, 24, lw, lh);
    }
    if (layout.text) {
      ctx.fillStyle = '#ffcc00';
      ctx.fillRect(0, h - 72, w, 72);
      ctx.fillStyle = '#111';
      ctx.font = 'bold 36px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      ctx.fillText(layout.text, 32, h - 36, w - 64);
    }
  }

  stop() {
    clearInterval(this.timer);
    for (const t of this.tracks) t.stop();
    this.audio?.close();
  }
}

/**
 * Browsers give camera, microphone and screen capture only to secure pages (HTTPS, or
 * localhost): on plain HTTP `navigator.mediaDevices` is missing and nothing could start.
 * Say so first, with the way out.
 */
function insecureContextNotice() {
  const host = location.host;
  return `<div class="alert error" role="alert" id="bc-insecure">
    <p><strong>This page needs HTTPS.</strong> Browsers allow the camera, the microphone and screen
    capture only on secure pages (https://, or localhost), and this one was opened as
    <code>${escape(location.origin)}</code>.</p>
    <p>Serve ferrocast over HTTPS: start it with <code>--acme-domain ${escape(location.hostname)}</code> to get a
    certificate automatically (or <code>--tls-cert</code>/<code>--tls-key</code>), or put it behind your HTTPS proxy with
    <code>--trusted-proxy</code>. Then open <code>https://${escape(host)}${escape(location.pathname)}</code>.</p>
    <p><a href="/help/https" rel="external">How to set up HTTPS (README, "Run it on a server")</a></p>
  </div><p><a href="/tokens">Back to tokens</a></p>`;
}

async function main() {
  await hydrated();
  if (!window.isSecureContext) {
    root.innerHTML = insecureContextNotice();
    root.dataset.ready = 'insecure';
    return;
  }
  const tokenId = root.dataset.tokenId;
  let token;
  let me;
  try {
    [token, me] = await Promise.all([getJSON(`/api/v1/tokens/${tokenId}`), getJSON('/api/v1/me')]);
  } catch (error) {
    root.innerHTML = `<div class="alert error" role="alert">${escape(error.message)}</div><p><a href="/tokens">Back to tokens</a></p>`;
    return;
  }
  const exact = token.streams.filter((s) => !s.endsWith('*'));
  const open = token.streams.some((s) => s.endsWith('*'));
  const codecs = (RTCRtpSender.getCapabilities?.('video')?.codecs ?? []).map((c) => c.mimeType.split('/')[1].toUpperCase());
  // VP8 first: every browser decodes it (recordings: VP8, VP9 and AV1 → WebM, H.264 → MP4).
  const codecOptions = ['VP8', 'H264', 'VP9', 'AV1'].filter((c) => codecs.includes(c));

  root.innerHTML = `
  <div class="page-header">
    <div>
      <h1>Broadcast · ${escape(token.label)}</h1>
      <p class="lede">Go live from this browser with the token <code>${escape(token.hint)}</code>.</p>
    </div>
    <span id="bc-status" class="status-badge off" role="status">Not live</span>
  </div>
  <div class="bc-grid">
    <div class="bc-main">
    <section class="card bc-stage">
      <div class="bc-preview">
        <video id="bc-preview" muted playsinline autoplay></video>
        <span id="bc-timer" class="bc-timer" hidden>00:00</span>
      </div>
      <p id="bc-hidden" class="alert warning" hidden>This tab is in the background: the browser slows its timers, so the mixer may drop frames. Keep it visible while live.</p>
      <div class="bc-actions">
        <button type="button" id="bc-mute" class="button">Mute</button>
        <button type="button" id="bc-camera" class="button">Camera off</button>
        <button type="button" id="bc-pip" class="button">Picture in picture</button>
        <button type="button" id="bc-start" class="button primary">Start</button>
      </div>
      <div id="bc-error" class="alert error" role="alert" hidden></div>
      <div id="bc-connection"></div>
    </section>
      <section class="card" id="bc-share">
        <h2>Share</h2>
        <label class="field">Viewer link <span class="copy-row"><input id="sh-link" readonly><button type="button" class="button" data-copy="sh-link">Copy</button></span></label>
        <label class="field">Embed code <span class="copy-row"><textarea id="sh-iframe" readonly rows="3"></textarea><button type="button" class="button" data-copy="sh-iframe">Copy</button></span></label>
        ${token.embedOrigins
          ? `<p class="hint" id="sh-embed-note">This token's streams play embedded only on ${token.embedOrigins.map((o) => `<code>${escape(o)}</code>`).join(', ')} (the token's embed setting); the viewer link works anywhere.</p>`
          : ''}
        ${token.secureViewer
          ? '<p class="hint" id="sh-secure-note">Secure viewer is on: these links play only with a viewer token. Make one on <a href="/viewer-tokens">Viewer tokens</a> and share its viewer link (it adds <code>?token=…</code>).</p>'
          : ''}
        <details id="sh-customize">
          <summary>Customize</summary>
          <div class="sh-options">
            ${['autoplay', 'muted', 'controls', 'badge', 'viewers', 'stats', 'pip', 'fullscreen', 'multiview']
              .map((o) => `<label><input type="checkbox" data-option="${o}" ${['autoplay', 'muted', 'badge', 'viewers'].includes(o) ? 'checked' : ''}> ${o}</label>`).join('')}
            <label class="field">Source <input type="text" id="sh-source" placeholder="main"></label>
            <label class="field">Quality <select id="sh-quality"><option value="auto">Auto</option><option value="high">High</option><option value="medium">Medium</option><option value="low">Low</option></select></label>
          </div>
          <iframe id="sh-preview" title="Embed preview" allow="autoplay; fullscreen; picture-in-picture" width="320" height="180"></iframe>
        </details>
      </section>
    </div>
    <div class="bc-side">
      <section class="card">
        <h2>Stream</h2>
        <label class="field">Stream name
          ${open
            ? `<input id="bc-stream" list="bc-stream-list" value="${escape(exact[0] ?? '')}" placeholder="stream name" autocomplete="off"><datalist id="bc-stream-list">${exact.map((s) => `<option value="${escape(s)}">`).join('')}</datalist>`
            : `<select id="bc-stream">${exact.map((s) => `<option>${escape(s)}</option>`).join('')}</select>`}
        </label>
        <label class="field">Source
          <select id="bc-source"><option value="camera">Camera</option><option value="screen">Screen</option><option value="mixer">Mixer (screen + camera + overlays)</option></select>
        </label>
        <label class="field">Camera <select id="bc-cam"></select></label>
        <label class="field">Microphone <select id="bc-mic"></select></label>
        <label class="field"><span><input type="checkbox" id="bc-record" ${token.record ? 'checked' : 'disabled'}> Record this broadcast</span></label>
        <p class="hint" id="bc-record-hint"></p>
        <p class="alert warning" id="bc-record-note" hidden></p>
        <fieldset class="field">
          <legend>Multisource</legend>
          <label><input type="checkbox" id="bc-multi" ${token.multisource ? '' : 'disabled'}> Publish as a separate source</label>
          <label class="field">Source ID <input id="bc-source-id" placeholder="cam2" ${token.multisource ? '' : 'disabled'}></label>
          <p class="hint" id="bc-multi-hint">${token.multisource
            ? 'Viewers see the main source first and can switch to others.'
            : 'This token does not have the multisource flag: turn it on in the token settings to publish several sources on one stream.'}</p>
        </fieldset>
      </section>
      <details class="card" id="bc-settings">
        <summary>Settings</summary>
        <label><input type="checkbox" id="bc-simulcast"> Simulcast</label>
        <p class="hint" id="bc-simulcast-hint">Sends three qualities (full, ½ and ¼ size) so that viewers on weak connections get a smaller picture instead of a frozen one. Publishing simulcast from a browser needs a Chromium-based browser (Chrome, Edge, Brave, Opera).</p>
        <label class="field">Capture size <select id="bc-size">${Object.keys(SIZES).map((s) => `<option ${s === '1280x720' ? 'selected' : ''}>${s}</option>`).join('')}</select></label>
        <label class="field">Frame rate <select id="bc-fps"><option>15</option><option>24</option><option selected>30</option><option>60</option></select></label>
        <label class="field">Aspect ratio <select id="bc-aspect"><option value="">As captured</option><option value="1.7778">16:9</option><option value="1.3333">4:3</option><option value="1">1:1</option></select></label>
        <label class="field">Codec <select id="bc-codec">${codecOptions.map((c) => `<option>${c}</option>`).join('')}</select></label>
        <label class="field">Max bitrate (kbit/s) <input id="bc-bitrate" type="number" min="100" max="20000" step="100" value="2500"></label>
        <label><input type="checkbox" id="bc-stereo"> Stereo (echo cancellation off)</label>
        <p class="hint">Simulcast, capture size, frame rate, aspect ratio, codec and stereo are fixed while live; the bitrate can change.</p>
      </details>
      <section class="card" id="bc-mixer" hidden>
        <h2>Mixer</h2>
        <label><input type="checkbox" id="mx-screen" checked> Share a screen (otherwise a colour background)</label>
        <label class="field">Background <input type="color" id="mx-background" value="#1f2937"></label>
        <label class="field">Camera position <select id="mx-corner"><option value="bottom-right">Bottom right</option><option value="bottom-left">Bottom left</option><option value="top-right">Top right</option><option value="top-left">Top left</option></select></label>
        <label class="field">Camera size <input type="range" id="mx-size" min="0.1" max="1" step="0.05" value="0.3"></label>
        <label class="field">Text overlay <input id="mx-text" placeholder="Lower third text"></label>
        <label class="field">Logo <input type="file" id="mx-logo" accept="image/*"></label>
        <label class="field">Microphone volume <input type="range" id="mx-mic" min="0" max="2" step="0.05" value="1"></label>
        <label class="field">Screen audio volume <input type="range" id="mx-screen-gain" min="0" max="2" step="0.05" value="1"></label>
        <label class="field">Level <meter id="mx-level" min="0" max="1" value="0"></meter></label>
        <p class="hint">The mixer canvas is ${MIXER_SIZE.join('×')}; its size and frame rate stay fixed while live.</p>
      </section>
    </div>
  </div>`;

  const preview = $('bc-preview');
  const state = {
    stream: null, mixer: null, publisher: null, live: false, muted: false, cameraOff: false, startedAt: 0, timer: null,
    // The server's word on this feed while live: is the recorder writing it?
    recording: false, reconnecting: 0, recordWatch: null,
  };
  const settings = () => ({
    size: SIZES[$('bc-size').value],
    fps: Number($('bc-fps').value),
    aspect: Number($('bc-aspect').value) || undefined,
    codec: $('bc-codec').value || undefined,
    bitrate: Number($('bc-bitrate').value) || undefined,
    simulcast: $('bc-simulcast').checked,
    stereo: $('bc-stereo').checked,
  });
  const streamName = () => $('bc-stream').value.trim();
  const sourceId = () => ($('bc-multi').checked ? $('bc-source-id').value.trim() : '');

  /** What the Record toggle will do, in words. */
  function updateRecordHint() {
    $('bc-record-hint').innerHTML = token.record
      ? 'Each source becomes a file on the <a href="/recordings">Recordings</a> page (VP8, VP9 and AV1 as WebM, H264 as MP4). Change it only while not live.'
      : 'This token does not allow recording: turn on Record in its settings.';
  }

  const showError = (message) => {
    $('bc-error').textContent = message;
    $('bc-error').hidden = !message;
  };

  function audioConstraints() {
    const s = settings();
    return { echoCancellation: !s.stereo, noiseSuppression: !s.stereo, autoGainControl: !s.stereo, channelCount: s.stereo ? 2 : 1 };
  }

  function stopCapture() {
    state.mixer?.stop();
    state.mixer = null;
    state.stream?.getTracks().forEach((t) => t.stop());
    state.stream = null;
  }

  /** Captures the chosen source; while live, swaps it in without renegotiation. */
  async function capture() {
    const s = settings();
    const kind = $('bc-source').value;
    const cameraId = $('bc-cam').value || undefined;
    const micId = $('bc-mic').value || undefined;
    const previous = { stream: state.stream, mixer: state.mixer };
    let stream;
    let mixer = null;
    if (kind === 'camera') {
      stream = await navigator.mediaDevices.getUserMedia({
        video: {
          deviceId: cameraId ? { exact: cameraId } : undefined,
          width: { ideal: s.size[0] }, height: { ideal: s.size[1] }, frameRate: { ideal: s.fps },
          aspectRatio: s.aspect ? { ideal: s.aspect } : undefined,
        },
        audio: { ...audioConstraints(), deviceId: micId ? { exact: micId } : undefined },
      });
    } else if (kind === 'screen') {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: s.fps }, audio: false });
      const mic = await navigator.mediaDevices.getUserMedia({ audio: { ...audioConstraints(), deviceId: micId ? { exact: micId } : undefined } }).catch(() => null);
      stream = new MediaStream([...display.getVideoTracks(), ...(mic?.getAudioTracks() ?? [])]);
    } else {
      mixer = new Mixer(state.live && state.mixer ? state.mixer.fps : s.fps);
      applyMixerLayout(mixer);
      stream = await mixer.start({ screen: $('mx-screen').checked, cameraId, micId, audio: audioConstraints() });
      applyMixerLayout(mixer); // what changed while it started
    }
    state.stream = stream;
    state.mixer = mixer;
    applyMute();
    preview.srcObject = stream;
    if (state.publisher) await state.publisher.setMediaStream(stream);
    previous.mixer?.stop();
    previous.stream?.getTracks().forEach((t) => t.stop());
    await listDevices();
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, label) => {
      const current = select.value || state.stream?.getTracks().find((t) => t.kind === (kind === 'videoinput' ? 'video' : 'audio'))?.getSettings().deviceId;
      const list = devices.filter((d) => d.kind === kind);
      select.innerHTML = list.map((d, i) => `<option value="${escape(d.deviceId)}">${escape(d.label || `${label} ${i + 1}`)}</option>`).join('');
      if (current && list.some((d) => d.deviceId === current)) select.value = current;
    };
    fill($('bc-cam'), 'videoinput', 'Camera');
    fill($('bc-mic'), 'audioinput', 'Microphone');
  }

  function applyMute() {
    state.stream?.getAudioTracks().forEach((t) => { t.enabled = !state.muted; });
    state.stream?.getVideoTracks().forEach((t) => { t.enabled = !state.cameraOff; });
    $('bc-mute').textContent = state.muted ? 'Unmute' : 'Mute';
    $('bc-mute').setAttribute('aria-pressed', String(state.muted));
    $('bc-camera').textContent = state.cameraOff ? 'Camera on' : 'Camera off';
    $('bc-camera').setAttribute('aria-pressed', String(state.cameraOff));
  }

  function applyMixerLayout(mixer = state.mixer) {
    if (!mixer) return;
    mixer.layout.corner = $('mx-corner').value;
    mixer.layout.size = Number($('mx-size').value);
    mixer.layout.text = $('mx-text').value;
    mixer.layout.background = $('mx-background').value;
    if (mixer.micGain) mixer.micGain.gain.value = Number($('mx-mic').value);
    if (mixer.screenGain) mixer.screenGain.gain.value = Number($('mx-screen-gain').value);
  }

  /** The badge: not live, live, live + REC (the server records this feed now), or
   * reconnecting by itself (attempt n) after a network drop. */
  function showStatus() {
    const [text, kind, title] = state.reconnecting ? [`Reconnecting (${state.reconnecting})`, 'reconnecting', 'The connection dropped; reconnecting by itself.']
      : !state.live ? ['Not live', 'off', 'You are currently not broadcasting.']
      : state.recording ? ['Live + REC', 'live rec', 'You are currently broadcasting live and recording.']
      : ['Live', 'live', 'You are currently broadcasting live.'];
    const badge = $('bc-status');
    badge.textContent = text;
    badge.className = `status-badge ${kind}`;
    badge.title = title;
  }

  /** While live, asks the server every two seconds whether this feed is being recorded (the
   * badge shows what the recorder does, not what was asked), and why not when it was asked. */
  function watchRecording(live) {
    clearInterval(state.recordWatch);
    state.recording = false;
    $('bc-record-note').hidden = true;
    if (!live) return;
    const name = streamName();
    const source = sourceId() || null;
    let misses = 0;
    const check = async () => {
      try {
        const streams = await getJSON('/api/v1/streams');
        const feed = streams.find((s) => s.streamName === name)?.sources.find((s) => (s.sourceId ?? null) === source);
        state.recording = Boolean(feed?.recording);
        showStatus();
        misses = state.recording || !$('bc-record').checked ? 0 : misses + 1;
        if (misses === 2) {
          const rows = await getJSON(`/api/v1/recordings?stream=${encodeURIComponent(name)}`);
          const last = rows.find((r) => (r.sourceId ?? null) === source);
          if (last?.reason && last.status !== 'recording') {
            $('bc-record-note').textContent = `Not recording: ${last.reason}`;
            $('bc-record-note').hidden = false;
          }
        }
        if (state.recording) $('bc-record-note').hidden = true;
      } catch { /* the next check tries again */ }
    };
    check();
    state.recordWatch = setInterval(check, 2000);
  }

  function setLive(live) {
    const resumed = live && state.live;
    state.live = live;
    state.reconnecting = 0;
    showStatus();
    if (resumed) return; // back after a reconnection: the timer keeps counting
    watchRecording(live);
    $('bc-start').textContent = live ? 'Stop' : 'Start';
    $('bc-start').classList.toggle('danger', live);
    for (const id of ['bc-simulcast', 'bc-size', 'bc-fps', 'bc-aspect', 'bc-codec', 'bc-stereo', 'bc-stream', 'bc-multi', 'bc-source-id', 'bc-record']) {
      $(id).disabled = live || ((id === 'bc-multi' || id === 'bc-source-id') && !token.multisource) || (id === 'bc-record' && !token.record);
    }
    $('bc-timer').hidden = !live;
    clearInterval(state.timer);
    if (live) {
      state.startedAt = Date.now();
      const tick = () => {
        const s = Math.floor((Date.now() - state.startedAt) / 1000);
        const pad = (n) => String(n).padStart(2, '0');
        $('bc-timer').textContent = s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
      };
      tick();
      state.timer = setInterval(tick, 1000);
    }
    updateShare();
  }

  async function start() {
    showError('');
    const name = streamName();
    if (!name) return showError('Enter a stream name.');
    if ($('bc-multi').checked && !sourceId()) return showError('Enter a Source ID for this source, or turn multisource off.');
    $('bc-start').disabled = true;
    try {
      if (!state.stream) await capture();
      // Grants live ten minutes: every (re)connection gets a fresh one, the first this one.
      const mint = async () => {
        const response = await fetch(`/api/v1/tokens/${tokenId}/grants`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ streamName: name, sourceId: sourceId() || null }),
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new SignalingError(response.status, body?.error?.message ?? `HTTP ${response.status}`);
        return body;
      };
      const first = await mint();
      let unused = first.grant;
      const grant = async () => {
        const fresh = unused ?? (await mint()).grant;
        unused = null;
        return fresh;
      };
      const s = settings();
      // The Record toggle, when the token allows recording (without it the server records nothing).
      const url = new URL(first.whipUrl, location.href);
      if (token.record) url.searchParams.set('record', $('bc-record').checked ? '1' : '0');
      const publisher = new Publisher({
        url: url.href, token: grant, sourceId: sourceId() || undefined,
        codec: s.codec, maxBitrateKbps: s.bitrate, stereo: s.stereo, simulcast: s.simulcast,
      });
      publisher.addEventListener('state', (event) => {
        if (publisher !== state.publisher) return;
        const { state: now, attempt, error } = event.detail;
        if (now === 'live') { showError(''); setLive(true); }
        if (now === 'reconnecting') {
          state.reconnecting = attempt;
          showStatus();
          showError(`The connection to the server dropped; reconnecting by itself (attempt ${attempt}). Viewers keep their page.`);
        }
        if (now === 'failed') { state.publisher = null; setLive(false); showError(explain(error)); }
      });
      state.publisher = publisher;
      await publisher.start(state.stream);
    } catch (error) {
      state.publisher = null;
      setLive(false);
      showError(explain(error));
    } finally {
      $('bc-start').disabled = false;
    }
  }

  async function stop() {
    const publisher = state.publisher;
    state.publisher = null;
    await publisher?.stop();
    setLive(false);
  }

  function shareUrl(options = {}) {
    const url = new URL(`/watch/${me.accountId}/${encodeURIComponent(streamName() || 'stream')}`, location.origin);
    for (const [k, v] of Object.entries(options)) url.searchParams.set(k, v);
    return url.href;
  }

  function updateShare() {
    $('sh-link').value = shareUrl();
    const options = {};
    for (const box of document.querySelectorAll('[data-option]')) {
      const fallback = ['autoplay', 'badge', 'viewers'].includes(box.dataset.option);
      if (box.checked !== fallback) options[box.dataset.option] = box.checked ? '1' : '0';
    }
    if ($('sh-source').value.trim()) options.source = $('sh-source').value.trim();
    if ($('sh-quality').value !== 'auto') options.quality = $('sh-quality').value;
    const embed = shareUrl(options);
    $('sh-iframe').value = `<iframe src="${embed}" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen width="640" height="360"></iframe>`;
    if ($('sh-customize').open && $('sh-preview').src !== embed) $('sh-preview').src = embed;
  }

  // Wiring.
  $('bc-start').addEventListener('click', () => (state.live || state.publisher ? stop() : start()));
  $('bc-mute').addEventListener('click', () => { state.muted = !state.muted; applyMute(); });
  $('bc-camera').addEventListener('click', () => { state.cameraOff = !state.cameraOff; applyMute(); });
  $('bc-pip').addEventListener('click', async () => {
    try {
      if (document.pictureInPictureElement) await document.exitPictureInPicture();
      else await preview.requestPictureInPicture();
    } catch (error) { showError(explain(error)); }
  });
  $('bc-pip').hidden = !document.pictureInPictureEnabled;
  const recapture = async () => {
    showError('');
    try { await capture(); } catch (error) { showError(explain(error)); }
  };
  $('bc-source').addEventListener('change', () => { $('bc-mixer').hidden = $('bc-source').value !== 'mixer'; recapture(); });
  for (const id of ['bc-cam', 'bc-mic']) $(id).addEventListener('change', recapture);
  for (const id of ['bc-size', 'bc-fps', 'bc-aspect', 'bc-stereo']) $(id).addEventListener('change', () => !state.live && recapture());
  $('bc-bitrate').addEventListener('change', () => state.publisher?.setMaxBitrate(Number($('bc-bitrate').value)));
  updateRecordHint();
  $('mx-screen').addEventListener('change', () => !state.live && recapture());
  for (const id of ['mx-corner', 'mx-size', 'mx-text', 'mx-background', 'mx-mic', 'mx-screen-gain']) {
    $(id).addEventListener('input', () => applyMixerLayout());
  }
  $('mx-logo').addEventListener('change', () => {
    const file = $('mx-logo').files[0];
    if (!file || !state.mixer) return;
    const image = new Image();
    image.onload = () => { if (state.mixer) state.mixer.layout.logo = image; };
    image.src = URL.createObjectURL(file);
  });
  setInterval(() => { if (state.mixer) $('mx-level').value = state.mixer.level(); }, 100);
  document.addEventListener('visibilitychange', () => {
    $('bc-hidden').hidden = !(document.hidden && state.mixer && state.live);
  });
  $('bc-stream').addEventListener('input', updateShare);
  for (const box of document.querySelectorAll('[data-option]')) box.addEventListener('change', updateShare);
  $('sh-source').addEventListener('input', updateShare);
  $('sh-quality').addEventListener('change', updateShare);
  $('sh-customize').addEventListener('toggle', updateShare);
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const field = $(button.dataset.copy);
      try { await navigator.clipboard.writeText(field.value); } catch { field.select(); document.execCommand?.('copy'); }
      button.textContent = 'Copied';
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
  }
  addEventListener('pagehide', () => { state.publisher?.stop(); });

  // Before going live: does media get through from here?
  mountConnectionTest($('bc-connection'));
  setLive(false);
  await recapture();
  root.dataset.ready = 'true';
  window.broadcaster = { state, start, stop, capture };
}

main();
