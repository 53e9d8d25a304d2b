// The hosted viewer (/watch/{accountId}/{streamName}): plays the stream with the publish/play
// module, shows NOT LIVE until it is live and connects by itself when it goes live.
//
// Query options (all optional, 1/0 or true/false): autoplay (1), muted (0), controls (0),
// badge (1), viewers (1), pip (0), fullscreen (0), stats (0), source (a source id; default main),
// multiview (0: one source; 1: a grid of every live source), poster (an image URL shown offline),
// quality (auto, high, medium, low: the simulcast layer; auto lets the server choose), token (a
// viewer token for a secure stream: traded for a short-lived grant at once, then removed from the
// address bar), grant (a signed viewer link's grant: the same).

import { Player, SignalingError } from './ferrocast.js';

const QUALITIES = ['auto', 'high', 'medium', 'low'];

const root = document.getElementById('player');
const account = root.dataset.account;
const streamName = root.dataset.stream;
const params = new URLSearchParams(location.search);
const flag = (name, fallback) => {
  const value = params.get(name);
  if (value === null) return fallback;
  return !['0', 'false', 'no', 'off'].includes(value.toLowerCase());
};
const options = {
  autoplay: flag('autoplay', true),
  muted: flag('muted', false),
  controls: flag('controls', false),
  badge: flag('badge', true),
  viewers: flag('viewers', true),
  pip: flag('pip', false),
  fullscreen: flag('fullscreen', false),
  stats: flag('stats', false),
  multiview: flag('multiview', false),
  source: params.get('source') || null,
  poster: params.get('poster'),
  quality: QUALITIES.includes(params.get('quality')) ? params.get('quality') : 'auto',
};

const $ = (id) => document.getElementById(id);
const stage = $('stage');
const offline = $('offline');
const picker = $('picker');
const sourceBar = $('source-bar');
if (options.poster) {
  offline.style.backgroundImage = `url(${JSON.stringify(options.poster)})`;
  offline.classList.add('with-poster');
}

let player = null;
let live = false; // the feed says the watched source is live
let chosen = options.source; // the source the viewer watches (null = main)
let sources = []; // [{ sourceId, active, tracks }]
let videos = [];
let quality = options.quality; // the layer asked for on pair 0
let layers = []; // pair 0's source's simulcast layers, best first: [{ layer, height, active }]
let shownLayer = null; // the layer pair 0 shows now (the server's word)
let refused = false; // not allowed to watch: the page says why and stops

// Secure streams (README "Viewer tokens", "Viewer links"). The link's viewer token or signed
// link (`grant`) leaves the address bar (and so every referrer and history entry) before anything
// else happens; the page keeps it for this tab only (a reload still plays), trades it for a viewer
// grant and renews the grant while it plays.
const secure = root.dataset.secure === 'true';
const kept = `ferrocast:viewer:${account}/${streamName}`;
let viewerToken = params.get('token') ?? params.get('grant');
if (viewerToken !== null) {
  params.delete('token');
  params.delete('grant');
  const query = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
  try { sessionStorage.setItem(kept, viewerToken); } catch { /* storage off: memory only */ }
} else {
  try { viewerToken = sessionStorage.getItem(kept); } catch { /* storage off */ }
}
let grant = null; // { value, renewAt }

// Framed by another site: its origin goes with the offer, so the owner's Live page can count
// viewers by site (a figure, not a permission: who may play is the server's check).
const embeddingSite = (() => {
  if (window.top === window) return null;
  const site = location.ancestorOrigins?.[0] ?? (document.referrer ? new URL(document.referrer).origin : null);
  return /^https?:\/\/[^/]+$/.test(site ?? '') && site !== location.origin ? site : null;
})();
const whepUrl = `/whep/${account}/${streamName}${embeddingSite ? `?embed=${encodeURIComponent(embeddingSite)}` : ''}`;

/** A viewer grant for this stream, fresh for at least a minute. Throws a SignalingError when refused. */
async function viewerGrant() {
  if (grant && Date.now() < grant.renewAt) return grant.value;
  for (const bearer of [grant?.value, viewerToken]) {
    if (!bearer) continue;
    const response = await fetch(`/api/v1/streams/${account}/${streamName}/grants`, {
      method: 'POST', headers: { authorization: `Bearer ${bearer}` },
    });
    if (response.status === 201) {
      const { grant: value, expiresIn } = await response.json();
      grant = { value, renewAt: Date.now() + Math.max(5, expiresIn - 60) * 1000 };
      return value;
    }
    // An expired grant (a sleeping tab) is traded again from the token; anything else is final.
    if (response.status !== 401 || bearer === viewerToken) {
      const body = await response.json().catch(() => null);
      throw new SignalingError(response.status, body?.error?.message ?? `HTTP ${response.status}`);
    }
  }
  throw new SignalingError(401, 'no viewer token');
}

/** Not allowed to watch: say why, in place of NOT LIVE, and stop trying. */
function refuse(message) {
  refused = true;
  player?.stop();
  feed?.close();
  root.dataset.state = 'refused';
  offline.hidden = false;
  picker.hidden = true;
  offline.querySelector('.offline-badge').textContent = 'Private';
  $('offline-text').textContent = message;
}

function setView(state) {
  if (refused) return;
  root.dataset.state = state;
  offline.hidden = state === 'playing';
  $('live-badge').hidden = !(options.badge && state === 'playing');
  $('viewers').hidden = !(options.viewers && state === 'playing');
  $('pip').hidden = !(options.pip && state === 'playing' && document.pictureInPictureEnabled);
  $('fullscreen').hidden = !(options.fullscreen && state === 'playing' && document.fullscreenEnabled);
}

function makeVideo() {
  const video = document.createElement('video');
  video.playsInline = true;
  video.autoplay = options.autoplay;
  video.controls = options.controls;
  video.muted = options.muted;
  stage.append(video);
  return video;
}

/** Starts playback; browsers refuse sound without a gesture, so fall back to muted + a button. */
async function startPlayback(video) {
  if (!options.autoplay) return;
  try {
    await video.play();
  } catch (error) {
    if (error.name !== 'NotAllowedError' || video.muted) return;
    video.muted = true;
    $('unmute').hidden = false;
    try { await video.play(); } catch { /* the controls let the viewer start it */ }
  }
}

$('unmute').addEventListener('click', () => {
  for (const v of videos) { v.muted = false; v.play().catch(() => {}); }
  $('unmute').hidden = true;
});
$('pip').addEventListener('click', () => videos[0]?.requestPictureInPicture().catch(() => {}));
$('fullscreen').addEventListener('click', () => root.requestFullscreen?.().catch(() => {}));

function sourceName(id) {
  return id ?? 'main';
}

/** Buttons that switch the first pair to another live source (without reconnecting). */
function renderSourceBar() {
  const live = sources.filter((s) => s.active);
  sourceBar.hidden = options.multiview || live.length < 2 || root.dataset.state !== 'playing';
  sourceBar.replaceChildren(...live.map((s) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = sourceName(s.sourceId);
    button.setAttribute('aria-pressed', String((s.sourceId ?? null) === chosen));
    button.addEventListener('click', async () => {
      chosen = s.sourceId ?? null;
      try { await player?.selectSource(0, chosen); } catch { /* it may have just ended */ }
      renderSourceBar();
    });
    return button;
  }));
}

/** The quality menu: Auto, then the layers by their height ("720p"), when there is a choice. */
function renderQuality() {
  const menu = $('quality');
  menu.hidden = options.multiview || layers.length < 2 || root.dataset.state !== 'playing';
  const label = (l) => (l.height ? `${l.height}p` : l.layer[0].toUpperCase() + l.layer.slice(1));
  const now = layers.find((l) => l.layer === shownLayer);
  const entries = [['auto', now ? `Auto (${label(now)})` : 'Auto'], ...layers.map((l) => [l.layer, label(l)])];
  menu.replaceChildren(...entries.map(([value, text]) => {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = text;
    return option;
  }));
  menu.value = quality;
}

$('quality').addEventListener('change', async (event) => {
  quality = event.target.value;
  try { await player?.selectLayer(0, quality); } catch { /* it may have just ended */ }
});

/** Without a main source, the viewer picks one. */
function renderPicker() {
  if (refused) return;
  const live = sources.filter((s) => s.active);
  const mainLive = live.some((s) => s.sourceId == null);
  const needsPick = !player && !options.multiview && chosen === null && !mainLive && live.length > 0;
  picker.hidden = !needsPick;
  $('offline-text').textContent = needsPick
    ? 'The main source is not live. Pick a source to watch:'
    : 'This stream starts playing by itself when it goes live.';
  if (!needsPick) return;
  picker.replaceChildren(...live.map((s) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = sourceName(s.sourceId);
    button.addEventListener('click', () => { chosen = s.sourceId; connect(); });
    return button;
  }));
}

function wanted() {
  const live = sources.filter((s) => s.active);
  if (options.multiview) return live.length > 0;
  if (chosen !== null) return live.some((s) => s.sourceId === chosen);
  return live.some((s) => s.sourceId == null);
}

async function connect() {
  if (player) return;
  const pairs = options.multiview ? Math.max(1, Math.min(4, sources.filter((s) => s.active).length)) : 1;
  stage.replaceChildren();
  stage.dataset.pairs = String(pairs);
  videos = Array.from({ length: pairs }, makeVideo);
  player = new Player({
    url: whepUrl, video: videos[0], pairs, sourceId: chosen ?? undefined, quality,
    ...(secure && { token: viewerGrant }),
  });
  player.addEventListener('error', (event) => {
    const status = event.detail.error?.status;
    if (status === 401 || status === 403) refuse(`You cannot watch this stream: ${event.detail.error.message}`);
  });
  player.addEventListener('sources', (event) => {
    const pair = event.detail.pairs?.[0];
    const source = event.detail.sources?.find((s) => pair?.assigned && (s.sourceId ?? null) === (pair.sourceId ?? null));
    layers = source?.layers ?? [];
    shownLayer = pair?.layer ?? null;
    // The layer shown, for pages that embed /watch and for tests: `high`, `medium` or `low`.
    if (shownLayer) root.dataset.layer = shownLayer;
    else delete root.dataset.layer;
    renderQuality();
  });
  player.addEventListener('track', (event) => {
    const video = videos[event.detail.pair];
    if (video && video.srcObject !== event.detail.stream) video.srcObject = event.detail.stream;
    if (video) startPlayback(video);
  });
  player.addEventListener('state', (event) => {
    const state = event.detail.state;
    if (state === 'playing' && live) setView('playing');
    else if (state === 'waiting' || state === 'reconnecting') setView('offline');
    renderSourceBar();
    renderQuality();
  });
  player.addEventListener('viewercount', (event) => {
    const n = event.detail.viewercount ?? 0;
    $('viewers').textContent = `${n} watching`;
  });
  player.play();
  renderPicker();
}

// The public feed of the stream: live or not, which sources. It starts the player and shows NOT
// LIVE; it never stops the player: reconnecting is the Player's alone. While the broadcaster is
// away (a network blip, a replaced source) the server keeps this viewer's session, and the
// picture comes back on it, without a new connection.
let feed = null;
if (secure && !viewerToken) {
  refuse('This stream is private: open it with the viewer link its owner shared with you.');
} else {
  try {
    if (secure) await viewerGrant();
    follow();
  } catch (error) {
    refuse(`This viewer link does not let you watch this stream: ${error.message}`);
  }
}

function follow() {
  feed = new EventSource(`/api/v1/streams/${account}/${streamName}/events`);
  feed.addEventListener('stream', onStreamState);
}

function onStreamState(event) {
  const state = JSON.parse(event.data);
  sources = state.sources ?? [];
  live = state.live && wanted();
  if (live && !player) connect();
  else if (player) setView(live && player.state === 'playing' ? 'playing' : 'offline');
  renderPicker();
  renderSourceBar();
}

// Stats overlay.
if (options.stats) {
  const stats = $('stats');
  setInterval(async () => {
    const s = await player?.getStats();
    stats.hidden = !s || root.dataset.state !== 'playing';
    if (s) {
      const rtt = s.rttMs == null ? '' : ` · RTT ${s.rttMs} ms`;
      stats.textContent = `${(s.bitrateKbps / 1000).toFixed(2)} Mbit/s · ${s.width}×${s.height} · ${Math.round(s.fps || 0)} fps${rtt}`;
    }
  }, 1000);
}

if (!refused) setView('offline');
window.ferrocastViewer = { get player() { return player; }, get videos() { return videos; }, options };
