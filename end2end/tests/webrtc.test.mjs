// WHIP and WHEP from a real browser: Chromium publishes its fake camera and microphone with plain
// WHIP (offer sent before gathering, candidates trickled with PATCH, like popular clients), a
// second page plays the stream with plain WHEP, and the video really decodes.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, signUpWithToken, startServer } from './support.mjs';

let server;
let browser;
let publisherPage;
let viewerPage;
let account;
let secret;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  publisherPage = await browser.context.newPage();
  viewerPage = await browser.context.newPage();
  // Any page of the site, so that fetch() is same-origin; the WHIP/WHEP doors allow any origin anyway.
  await publisherPage.goto(server.url + '/login');
  await viewerPage.goto(server.url + '/login');
  ({ account, secret } = await signUpWithToken(publisherPage, 'webrtc-e2e@example.com', { label: 'browser', streams: ['browser'] }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('Chromium publishes through WHIP with trickled candidates and another page plays it through WHEP', async () => {
  const publish = await publisherPage.evaluate(async (token) => {
    const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    const early = [];
    let sessionUrl = null;
    let etag = null;
    const patch = async (candidates) => {
      const ice = pc.localDescription.sdp.match(/a=ice-ufrag:(.*)\r\na=ice-pwd:(.*)\r\n/);
      const lines = candidates.map((c) => (c ? `a=${c.candidate}\r\n` : 'a=end-of-candidates\r\n')).join('');
      const response = await fetch(sessionUrl, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': etag },
        body: `a=ice-ufrag:${ice[1]}\r\na=ice-pwd:${ice[2]}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n${lines}`,
      });
      window.patchStatuses.push(response.status);
    };
    window.patchStatuses = [];
    pc.onicecandidate = (event) => {
      if (sessionUrl) patch([event.candidate]);
      else early.push(event.candidate);
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    // Sent at once, before any candidate: the server must cope with a candidate-less offer.
    const response = await fetch('/whip/browser', {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: offer.sdp,
    });
    if (response.status !== 201) return { status: response.status, body: await response.text() };
    sessionUrl = response.headers.get('location');
    etag = response.headers.get('etag');
    const answer = await response.text();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    if (early.length) await patch(early);
    window.publisher = pc;
    const connected = await new Promise((resolve) => {
      const check = () => pc.connectionState === 'connected' && resolve(true);
      pc.onconnectionstatechange = check;
      check();
      setTimeout(() => resolve(false), 10_000);
    });
    return { status: 201, sessionUrl, connected, offerHadCandidates: /a=candidate/.test(offer.sdp) };
  }, secret);
  assert.equal(publish.status, 201, JSON.stringify(publish));
  assert.equal(publish.offerHadCandidates, false, 'the offer went out before gathering');
  assert.equal(publish.connected, true, 'the publisher connected');
  assert.match(publish.sessionUrl, /^\/whip\/browser\/[0-9a-f]{32}$/);

  const view = await viewerPage.evaluate(async (path) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    const streams = new Set();
    pc.ontrack = (event) => {
      streams.add(event.streams[0]?.id);
      video.srcObject = event.streams[0];
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      setTimeout(resolve, 3_000);
    });
    const response = await fetch(path, {
      method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (response.status !== 201) return { status: response.status, body: await response.text() };
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    window.viewer = { pc, video, streams };
    return { status: 201 };
  }, `/whep/${account}/browser`);
  assert.equal(view.status, 201, JSON.stringify(view));

  const sample = () => viewerPage.evaluate(async () => {
    const { pc, video, streams } = window.viewer;
    const stats = await pc.getStats();
    let framesDecoded = 0;
    let audioPackets = 0;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded = s.framesDecoded ?? 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audioPackets = s.packetsReceived ?? 0;
    });
    return {
      width: video.videoWidth, time: video.currentTime, framesDecoded, audioPackets,
      tracks: video.srcObject?.getTracks().length ?? 0, streams: streams.size,
    };
  });
  let first;
  for (let i = 0; i < 100; i++) {
    first = await sample();
    if (first.width > 0 && first.framesDecoded > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(first.width > 0, `the video has a size: ${JSON.stringify(first)}`);
  await new Promise((r) => setTimeout(r, 1_500));
  const later = await sample();
  assert.ok(later.framesDecoded > first.framesDecoded, `frames keep decoding: ${JSON.stringify([first, later])}`);
  assert.ok(later.time > first.time, `playback advances: ${JSON.stringify([first, later])}`);
  assert.ok(later.audioPackets > 0, 'audio arrives too');
  assert.equal(later.tracks, 2, 'audio and video share one MediaStream (a=msid)');
  assert.ok(publish.connected);

  // The dashboard (same browser, so the same session) shows the stream and the token as live.
  const dashboard = await browser.context.newPage();
  await dashboard.goto(server.url + '/live');
  const row = dashboard.locator('tr[data-stream="browser"]');
  await row.waitFor({ timeout: 10_000 });
  assert.match(await row.textContent(), /main/);
  assert.equal(await row.locator(`a[href="/watch/${account}/browser"]`).count(), 1, 'the stream links to its viewer');
  assert.match(await row.textContent(), /video vp8|video h264|video vp9|video av1/i);
  await dashboard.waitForFunction(() => document.querySelector('tr[data-stream="browser"] .viewers-cell')?.textContent === '1', null, { timeout: 10_000 });
  await dashboard.goto(server.url + '/tokens');
  await dashboard.locator('tr:has-text("browser") .badge.live').waitFor({ timeout: 10_000 });
  await dashboard.goto(server.url + '/live');
  await row.waitFor({ timeout: 10_000 });

  // DELETE ends the feed: the public state says so, and the Live page empties by itself.
  const ended = await publisherPage.evaluate(async (url) => (await fetch(url, { method: 'DELETE' })).status, publish.sessionUrl);
  assert.equal(ended, 200);
  const state = await viewerPage.evaluate(async (path) => (await fetch(path)).json(), `/api/v1/streams/${account}/browser`);
  assert.equal(state.live, false);
  await dashboard.getByText('Nothing is live').waitFor({ timeout: 10_000 });
  const patches = await publisherPage.evaluate(() => window.patchStatuses);
  assert.ok(patches.length > 0 && patches.every((s) => s === 204), `trickle PATCHes: ${patches}`);
});
