// The connectivity self-check (README "Connectivity self-check"), for logged-in pages: what the
// server announces (GET /api/v1/self-check) and "Test my connection", short probe sessions from
// this browser to the media server that tell, in words, whether UDP and TCP media get through
// from here, the round trip, and whether TURN is needed.
//
// The Live page mounts the whole panel into #self-check; the broadcaster mounts only the test.

import { iceServersFromLinks, parseLinks } from './ferrocast.js';
import { hydrated } from './hydrated.js';

/** How long one probe may take to connect before its transport counts as blocked. */
const PROBE_TIMEOUT_MS = 6_000;

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/**
 * One probe over `transport` (`udp`, `tcp`, or `any` through TURN when `relay`). Resolves to
 * { ok, rttMs, protocol, relayed, reason } and never rejects.
 */
async function probe(transport, { relay = false } = {}) {
  const pc = new RTCPeerConnection(relay ? { iceTransportPolicy: 'relay' } : {});
  let location = null;
  try {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    const response = await fetch(`/self-check/probe?transport=${transport}`, {
      method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer.sdp, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (response.status !== 201) return { ok: false, reason: (await response.text()).trim() || `HTTP ${response.status}` };
    location = response.headers.get('location');
    const links = parseLinks(response.headers.get('link'), location && new URL(location, window.location.href).href);
    const iceServers = iceServersFromLinks(links).filter((s) => !relay || /^turns?:/.test(s.urls));
    if (relay && !iceServers.length) return { ok: false, reason: 'no TURN server is configured' };
    if (iceServers.length) pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
    const answer = await response.text();
    await pc.setLocalDescription(offer);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    const connected = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
      const check = () => {
        if (pc.connectionState === 'connected') { clearTimeout(timer); resolve(true); }
        if (pc.connectionState === 'failed') { clearTimeout(timer); resolve(false); }
      };
      pc.addEventListener('connectionstatechange', check);
      check();
    });
    if (!connected) return { ok: false, reason: 'no connection' };
    // The selected pair: its protocol and its round trip (measured by the ICE checks).
    let pair = null;
    for (let i = 0; i < 20 && !pair?.currentRoundTripTime; i++) {
      const stats = await pc.getStats();
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
      if (!pair?.currentRoundTripTime) await new Promise((r) => setTimeout(r, 100));
    }
    const local = pair && (await pc.getStats()).get(pair.localCandidateId);
    return {
      ok: true,
      rttMs: pair?.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null,
      protocol: local?.protocol ?? transport,
      relayed: local?.candidateType === 'relay',
    };
  } catch (error) {
    return { ok: false, reason: error?.name === 'TimeoutError' ? 'the server did not answer' : (error?.message ?? String(error)) };
  } finally {
    pc.close();
    if (location) fetch(location, { method: 'DELETE' }).catch(() => {});
  }
}

/**
 * Runs the test: UDP and TCP at once, then TURN if neither got through. Resolves to
 * { udp, tcp, turn, verdict } (turn is null when it was not needed).
 */
export async function testConnection() {
  const [udp, tcp] = await Promise.all([probe('udp'), probe('tcp')]);
  const turn = udp.ok || tcp.ok ? null : await probe('any', { relay: true });
  return { udp, tcp, turn, verdict: verdict(udp, tcp, turn) };
}

/** The result in one sentence. */
export function verdict(udp, tcp, turn) {
  const rtt = (r) => (r.rttMs != null ? ` (round trip ${r.rttMs} ms)` : '');
  if (udp.ok && tcp.ok) return `UDP and TCP both work: media reaches the server from here${rtt(udp)}.`;
  if (udp.ok) return `UDP works${rtt(udp)}; TCP is ${tcp.reason?.includes('off') ? 'off on this server' : 'blocked'}, which only matters to networks that block UDP.`;
  if (tcp.ok) return `UDP blocked, TCP works: media goes over TCP from here${rtt(tcp)}; no TURN server needed.`;
  if (turn?.ok) return `UDP and TCP blocked: media gets through only via the TURN relay from here (TURN needed)${rtt(turn)}.`;
  return `Media cannot reach the server from here: UDP and TCP are blocked${turn ? ` and TURN failed (${turn.reason})` : ''}.`;
}

function describe(name, result) {
  if (!result) return '';
  const text = result.ok
    ? `ok${result.rttMs != null ? `, ${result.rttMs} ms` : ''}${result.relayed ? ', relayed' : ''}`
    : `blocked (${result.reason})`;
  return `<li data-transport="${name.toLowerCase()}" data-ok="${result.ok}"><strong>${name}:</strong> ${escape(text)}</li>`;
}

/** A "Test my connection" button with its result below, in `container`. */
export function mountConnectionTest(container) {
  container.insertAdjacentHTML('beforeend', `
    <div class="connection-test">
      <button type="button" class="button" data-role="test-connection">Test my connection</button>
      <p class="connection-verdict" data-role="verdict" role="status" hidden></p>
      <ul class="connection-results" data-role="results" hidden></ul>
    </div>`);
  const button = container.querySelector('[data-role="test-connection"]');
  const verdictLine = container.querySelector('[data-role="verdict"]');
  const results = container.querySelector('[data-role="results"]');
  button.addEventListener('click', async () => {
    button.disabled = true;
    verdictLine.hidden = false;
    verdictLine.textContent = 'Testing…';
    results.hidden = true;
    const outcome = await testConnection();
    verdictLine.textContent = outcome.verdict;
    results.innerHTML = describe('UDP', outcome.udp) + describe('TCP', outcome.tcp) + describe('TURN', outcome.turn);
    results.hidden = false;
    container.dataset.tested = 'true';
    button.disabled = false;
  });
}

/** The Live page's panel: the server's facts, its warnings, and the test. */
async function mountPanel(root) {
  const response = await fetch('/api/v1/self-check');
  if (!response.ok) {
    root.innerHTML = '<p class="alert error">The self-check is not available (are you still logged in?).</p>';
    return;
  }
  const facts = await response.json();
  const list = (items) => (items.length ? items.map(escape).join(', ') : 'none');
  const https = facts.https.enabled
    ? `yes (${escape(facts.https.terminatedBy)}${facts.https.certificateExpires ? `, certificate valid until ${escape(facts.https.certificateExpires)}` : ''})`
    : 'no';
  const ice = facts.iceServers.map((s) => `${s.urls} (${s.credentials === 'time-limited' ? 'time-limited credentials' : s.credentials === 'static' ? 'fixed credentials' : 'no credentials'})`);
  root.innerHTML = `
    <h2>Connectivity self-check</h2>
    <dl class="facts">
      <dt>Public URL</dt><dd data-fact="public-url">${escape(facts.publicUrl)}</dd>
      <dt>HTTPS</dt><dd data-fact="https">${https}</dd>
      <dt>Media (UDP)</dt><dd data-fact="udp">${list(facts.media.udp)}</dd>
      <dt>Media (TCP)</dt><dd data-fact="tcp">${facts.media.tcp.length ? list(facts.media.tcp) : 'off'}</dd>
      <dt>ICE servers</dt><dd data-fact="ice-servers">${list(ice)}</dd>
    </dl>
    ${facts.warnings.map((w) => `<p class="alert warning" data-role="warning">${escape(w)}</p>`).join('')}`;
  mountConnectionTest(root);
  root.dataset.ready = 'true';
}

const panel = document.getElementById('self-check');
if (panel) hydrated().then(() => mountPanel(panel));
