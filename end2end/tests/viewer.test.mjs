// The publish/play module and the hosted viewer: a bare page publishes a canvas with
// public/ferrocast.js, /watch plays it (opened before the stream went live), setMediaStream swaps
// the picture live without renegotiation, the viewer embedded in an iframe on another origin plays,
// stopping brings back NOT LIVE, and the module imported by a page of another site plays and
// selects sources.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { launchBrowser, signUpWithToken, startServer, videoPixel, waitFor, waitForHydration } from './support.mjs';

let server;
let browser;
let publisherPage;
let viewerPage;
let account;
let secret;
let embedServer;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  publisherPage = await browser.context.newPage();
  viewerPage = await browser.context.newPage();
  await publisherPage.goto(server.url + '/login');
  ({ account, secret } = await signUpWithToken(publisherPage, 'viewer-e2e@example.com', { label: 'module', streams: ['show'] }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => (embedServer ? embedServer.close(resolve) : resolve()));
});

const centreColour = (page, frame = page) => videoPixel(frame);

const isRed = (c) => c && c[0] > 160 && c[1] < 90 && c[2] < 90;
const isBlue = (c) => c && c[2] > 160 && c[0] < 90 && c[1] < 90;

test('the viewer opened before the stream connects by itself, and setMediaStream swaps the picture live', async () => {
  await viewerPage.goto(`${server.url}/watch/${account}/show?muted=1&stats=1`);
  await viewerPage.getByText('Not live').waitFor();
  assert.equal(await viewerPage.locator('#player').getAttribute('data-state'), 'offline');

  const started = await publisherPage.evaluate(async ({ token }) => {
    const { Publisher } = await import('/ferrocast.js');
    const paint = (colour) => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 240;
      const ctx = canvas.getContext('2d');
      let tick = 0;
      // Keep drawing: a canvas stream only sends frames when it changes.
      setInterval(() => {
        ctx.fillStyle = colour;
        ctx.fillRect(0, 0, 320, 240);
        ctx.fillStyle = '#fff';
        ctx.fillRect((tick++ * 4) % 300, 0, 20, 20);
      }, 33);
      return canvas.captureStream(30);
    };
    window.paint = paint;
    const publisher = new Publisher({ url: '/whip/show', token });
    window.publisher = publisher;
    window.states = [];
    publisher.addEventListener('state', (e) => window.states.push(e.detail.state));
    await publisher.start(paint('#e00000'));
    return { location: publisher.session.location };
  }, { token: secret });
  assert.match(started.location, /\/whip\/show\/[0-9a-f]{32}$/);

  await viewerPage.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await waitFor('a red picture', async () => isRed(await centreColour(viewerPage)));
  const decoded = () => viewerPage.evaluate(async () => {
    const stats = await window.ferrocastViewer.player.getStats();
    return { frames: stats.framesDecoded, time: document.querySelector('video').currentTime };
  });
  const first = await decoded();
  await new Promise((r) => setTimeout(r, 1_000));
  const later = await decoded();
  assert.ok(later.frames > first.frames && later.time > first.time, JSON.stringify([first, later]));
  assert.ok(await viewerPage.locator('#live-badge').isVisible(), 'the live badge shows');
  await viewerPage.locator('#viewers').getByText('1 watching').waitFor();
  await viewerPage.locator('#stats').getByText(/Mbit\/s/).waitFor();

  // Swap the source: same session, no new offer, the viewer sees blue.
  const swapped = await publisherPage.evaluate(async () => {
    await window.publisher.setMediaStream(window.paint('#0000e0'));
    return { location: window.publisher.session.location, signaling: window.publisher.session.pc.signalingState };
  });
  assert.equal(swapped.location, started.location, 'the same WHIP session');
  assert.equal(swapped.signaling, 'stable');
  await waitFor('a blue picture after setMediaStream', async () => isBlue(await centreColour(viewerPage)));
});

test('the iframe embed plays on another origin', async () => {
  embedServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>embed</title><iframe src="${server.url}/watch/${account}/show?muted=1" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen width="640" height="360"></iframe>`);
  });
  await new Promise((resolve) => embedServer.listen(0, '127.0.0.1', resolve));
  const page = await browser.context.newPage();
  await page.goto(`http://127.0.0.1:${embedServer.address().port}/`);
  const frame = await waitFor('the iframe', async () => page.frames().find((f) => f.url().includes('/watch/')));
  await waitFor('the embedded player plays', async () => isBlue(await centreColour(page, frame)));
  await page.close();
});

test('stopping the publisher brings back NOT LIVE', async () => {
  await publisherPage.evaluate(() => window.publisher.stop());
  await viewerPage.waitForSelector('#player[data-state="offline"]', { timeout: 15_000 });
  assert.ok(await viewerPage.getByText('Not live').isVisible());
  const states = await publisherPage.evaluate(() => window.states);
  assert.deepEqual(states.filter((s) => s !== 'connecting'), ['live', 'stopped'], JSON.stringify(states));
});

test('multisource: without a main source the viewer picks one, switches between them, and multi-view shows both', async () => {
  const multi = await publisherPage.evaluate(async () => {
    const post = (path, body) => fetch(path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const token = await (await post('/api/v1/tokens', { label: 'multi', streams: ['room'], multisource: true })).json();
    const { Publisher } = await import('/ferrocast.js');
    window.cams = [];
    for (const [sourceId, colour] of [['cam1', '#e00000'], ['cam2', '#0000e0']]) {
      const publisher = new Publisher({ url: '/whip/room', token: token.secret, sourceId });
      await publisher.start(window.paint(colour));
      window.cams.push(publisher);
    }
    return token.secret;
  });
  assert.ok(multi);

  const page = await browser.context.newPage();
  await page.goto(`${server.url}/watch/${account}/room?muted=1`);
  await page.getByText('Pick a source').waitFor({ timeout: 15_000 });
  await page.locator('#picker').getByRole('button', { name: 'cam1' }).click();
  await page.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await waitFor('cam1 (red)', async () => isRed(await centreColour(page)));
  await page.locator('#source-bar').getByRole('button', { name: 'cam2' }).click();
  await waitFor('cam2 (blue) after switching', async () => isBlue(await centreColour(page)));
  await page.close();

  const grid = await browser.context.newPage();
  await grid.goto(`${server.url}/watch/${account}/room?muted=1&multiview=1`);
  await grid.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await waitFor('both sources in the grid', async () => {
    const colours = await grid.evaluate(() => Array.from(document.querySelectorAll('video')).map((video) => {
      if (!video.videoWidth) return null;
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(video, 0, 0);
      return Array.from(ctx.getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data.slice(0, 3));
    }));
    return colours.length === 2 && colours.some(isRed) && colours.some(isBlue);
  });
  await grid.close();
  await publisherPage.evaluate(async () => { for (const cam of window.cams) await cam.stop(); });
});

test('every video codec the browser can send reaches a viewer and decodes', async () => {
  const codecs = await publisherPage.evaluate(() =>
    [...new Set(RTCRtpSender.getCapabilities('video').codecs.map((c) => c.mimeType.split('/')[1].toUpperCase()))]
      .filter((c) => ['H264', 'VP8', 'VP9', 'AV1'].includes(c)));
  assert.ok(codecs.includes('VP8') && codecs.includes('H264'), `codecs: ${codecs}`);
  for (const codec of codecs) {
    await publisherPage.evaluate(async ({ token, codec }) => {
      const { Publisher } = await import('/ferrocast.js');
      window.codecPublisher = new Publisher({ url: '/whip/show', token, codec });
      await window.codecPublisher.start(window.paint('#00c000'));
    }, { token: secret, codec });
    const got = await viewerPage.evaluate(async (path) => {
      const { Player } = await import('/ferrocast.js');
      const video = document.createElement('video');
      video.muted = true;
      document.body.append(video);
      const player = new Player({ url: path, video });
      player.play();
      const deadline = Date.now() + 15_000;
      let result = null;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        const stats = await player.session?.pc.getStats();
        let frames = 0;
        let mime = null;
        stats?.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            frames = s.framesDecoded ?? 0;
            mime = stats.get(s.codecId)?.mimeType ?? null;
          }
        });
        if (frames > 5) { result = { frames, mime }; break; }
      }
      await player.stop();
      video.remove();
      return result;
    }, `/whep/${account}/show`);
    await publisherPage.evaluate(() => window.codecPublisher.stop());
    assert.ok(got, `${codec}: the viewer decoded frames`);
    assert.equal(got.mime.split('/')[1].toUpperCase(), codec, `${codec}: the viewer got ${got.mime}`);
  }
});

test('the module from another site: it waits on the stream feed of its server, plays within a second of going live, and selects sources', async () => {
  // A page of another origin (its own port), as a customer's site would be.
  const site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>customer site</title><p>our show</p>');
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  const siteUrl = `http://127.0.0.1:${site.address().port}`;
  assert.notEqual(new URL(siteUrl).origin, new URL(server.url).origin);
  const page = await browser.context.newPage();
  try {
    await page.goto(siteUrl + '/');
    await page.evaluate(async ({ base, path }) => {
      const { Player } = await import(`${base}/ferrocast.js`);
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      document.body.append(video);
      window.seen = [];
      const player = new Player({ url: `${base}${path}`, video });
      for (const name of ['state', 'active']) {
        player.addEventListener(name, (e) => window.seen.push({ name, state: e.detail?.state, at: Date.now() }));
      }
      window.player = player;
      player.play();
    }, { base: server.url, path: `/whep/${account}/xsite` });
    await waitFor('the player waits for the stream', () =>
      page.evaluate(() => window.seen.some((e) => e.state === 'waiting')));

    const liveAt = await publisherPage.evaluate(async () => {
      const response = await fetch('/api/v1/tokens', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ label: 'other site', streams: ['xsite'], multisource: true }),
      });
      const token = await response.json();
      const { Publisher } = await import('/ferrocast.js');
      window.siteCams = [];
      let liveAt = null;
      for (const [sourceId, colour] of [['cam1', '#e00000'], ['cam2', '#0000e0']]) {
        const publisher = new Publisher({ url: '/whip/xsite', token: token.secret, sourceId });
        publisher.addEventListener('state', (e) => { if (e.detail.state === 'live') liveAt ??= Date.now(); });
        await publisher.start(window.paint(colour));
        window.siteCams.push(publisher);
      }
      const deadline = Date.now() + 15_000;
      while (liveAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return liveAt;
    });
    assert.ok(liveAt, 'the publisher went live');

    // The feed, not polling: a module that waited on its page's origin would retry after 10 s.
    const active = await waitFor('the player sees the stream active', async () =>
      page.evaluate(() => window.seen.find((e) => e.name === 'active')), 15_000);
    console.log(`# active ${active.at - liveAt} ms after the publisher went live`);
    assert.ok(active.at - liveAt < 1_000, `active ${active.at - liveAt} ms after going live: ${JSON.stringify(await page.evaluate(() => window.seen))}`);
    await waitFor('playing', () => page.evaluate(() => window.player.state === 'playing'));

    // Source selection goes to the server's layer extension, across origins.
    await page.evaluate(() => window.player.selectSource(0, 'cam1'));
    await waitFor('cam1 (red) on the other site', async () => isRed(await centreColour(page)));
    await page.evaluate(() => window.player.selectSource(0, 'cam2'));
    await waitFor('cam2 (blue) on the other site', async () => isBlue(await centreColour(page)));
    await page.evaluate(() => window.player.stop());
  } finally {
    await page.close();
    await publisherPage.evaluate(async () => { for (const cam of window.siteCams ?? []) await cam.stop(); });
    // The browser keeps its idle connection open: close it, or close() waits for its timeout.
    site.closeAllConnections();
    await new Promise((resolve) => site.close(resolve));
  }
});

test('embedOrigins: a listed site frames the viewer and plays; another site can neither frame it nor play it with the module', async () => {
  // Two customer sites on their own ports; each frames the stream's viewer.
  const sites = [];
  const openSite = async () => {
    const site = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>site</title><iframe src="${server.url}/watch/${account}/fans?muted=1" allow="autoplay" width="320" height="180"></iframe>`);
    });
    await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
    sites.push(site);
    return `http://127.0.0.1:${site.address().port}`;
  };
  const listed = await openSite();
  const elsewhere = await openSite();
  const pages = [];
  try {
    await publisherPage.evaluate(async (listed) => {
      const response = await fetch('/api/v1/tokens', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ label: 'fans only', streams: ['fans'], embedOrigins: [listed] }),
      });
      if (response.status !== 201) throw new Error(`token: ${response.status} ${await response.text()}`);
      const token = await response.json();
      const { Publisher } = await import('/ferrocast.js');
      window.fansCam = new Publisher({ url: '/whip/fans', token: token.secret });
      await window.fansCam.start(window.paint('#e00000'));
    }, listed);

    // The listed site: the framed viewer plays.
    const good = await browser.context.newPage();
    pages.push(good);
    await good.goto(listed + '/');
    const frame = await waitFor('the iframe', async () => good.frames().find((f) => f.url().includes('/watch/')));
    await waitFor('the viewer framed by the listed site plays', async () => isRed(await centreColour(good, frame)), 20_000);
    // The owner sees where that viewer watches.
    await waitFor('the viewer counted by site', async () => {
      const streams = await publisherPage.evaluate(async () => (await fetch('/api/v1/streams')).json());
      const fans = streams.find((s) => s.streamName === 'fans');
      return fans?.viewersBySite?.some((s) => s.origin === listed && s.viewers === 1);
    }, 10_000);

    // Another site: the browser refuses to render the frame (frame-ancestors), so no player runs.
    const bad = await browser.context.newPage();
    pages.push(bad);
    const refusals = [];
    bad.on('console', (message) => { if (message.text().includes('frame-ancestors')) refusals.push(message.text()); });
    await bad.goto(elsewhere + '/');
    await waitFor('the browser refuses the frame', async () => refusals.length > 0, 10_000);
    const players = await Promise.all(bad.frames().map((f) => f.evaluate(() => !!document.getElementById('player')).catch(() => false)));
    assert.ok(!players.some(Boolean), 'no viewer runs inside the refused frame');

    // The module on that site: WHEP answers 403 with the reason, and the player stops there.
    const outcome = await bad.evaluate(async ({ base, path }) => {
      const { Player } = await import(`${base}/ferrocast.js`);
      const states = [];
      const player = new Player({ url: `${base}${path}` });
      player.addEventListener('state', (e) => states.push(e.detail.state));
      let error = null;
      player.addEventListener('error', (e) => { error = e.detail.error; });
      await Promise.race([player.play(), new Promise((r) => setTimeout(r, 10_000))]);
      await new Promise((r) => setTimeout(r, 2_500));
      player.stop();
      return { states, status: error?.status, message: error?.message };
    }, { base: server.url, path: `/whep/${account}/fans` });
    assert.equal(outcome.status, 403, JSON.stringify(outcome));
    assert.match(outcome.message, /embedOrigins/);
    assert.deepEqual(outcome.states.filter((s) => s === 'connecting').length, 1, `asked once, not again: ${outcome.states}`);
  } finally {
    for (const page of pages) await page.close();
    await publisherPage.evaluate(async () => { await window.fansCam?.stop(); });
    for (const site of sites) {
      site.closeAllConnections();
      await new Promise((resolve) => site.close(resolve));
    }
  }
});

test('secure viewer: /watch says a private stream is private; a viewer link from the Viewer tokens page and a signed link play it and leave the address bar', async () => {
  await publisherPage.evaluate(async () => {
    const response = await fetch('/api/v1/tokens', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ label: 'members only', streams: ['members'], secureViewer: true }),
    });
    if (response.status !== 201) throw new Error(`token: ${response.status} ${await response.text()}`);
    const token = await response.json();
    const { Publisher } = await import('/ferrocast.js');
    window.membersCam = new Publisher({ url: '/whip/members', token: token.secret });
    await window.membersCam.start(window.paint('#e00000'));
  });
  const pages = [];
  const open = async (url) => {
    const page = await browser.context.newPage();
    pages.push(page);
    await page.goto(url);
    return page;
  };
  try {
    // The dashboard page makes a viewer token and its link, shown once.
    const dashboard = await open(server.url + '/viewer-tokens');
    await waitForHydration(dashboard);
    await dashboard.getByLabel('Label').fill('members');
    await dashboard.getByLabel('Stream names').fill('members');
    await dashboard.getByRole('button', { name: 'Create viewer token' }).click();
    const secret = await dashboard.getByTestId('secret').textContent();
    assert.match(secret, /^fcs_[0-9a-f]{64}$/);
    const link = await dashboard.getByTestId('viewer-link').textContent();
    assert.equal(new URL(link).searchParams.get('token'), secret);
    await dashboard.locator('#viewer-tokens tr', { hasText: 'members' }).waitFor();

    // Without a token: a clear message, not a spinner.
    const bare = await open(`${server.url}/watch/${account}/members`);
    await waitFor('the private notice', () => bare.evaluate(() => document.getElementById('player').dataset.state === 'refused'), 5_000);
    assert.match(await bare.locator('#offline-text').textContent(), /private/);
    // A made-up token: refused, in words.
    const wrong = await open(`${server.url}/watch/${account}/members?token=fcs_${'0'.repeat(64)}&muted=1`);
    await waitFor('the refusal', () => wrong.evaluate(() => document.getElementById('player').dataset.state === 'refused'), 5_000);
    assert.match(await wrong.locator('#offline-text').textContent(), /not valid/);

    // The link plays, and the secret is gone from the address bar at once.
    const viewer = await open(link + '&muted=1');
    const address = await viewer.evaluate(() => location.href);
    assert.ok(!address.includes('token=') && !address.includes(secret), address);
    assert.ok(address.includes('muted=1'), `other options stay: ${address}`);
    await waitFor('the secure stream plays', async () => isRed(await centreColour(viewer)), 20_000);
    assert.equal(await viewer.evaluate(() => document.getElementById('player').dataset.state), 'playing');

    // A signed viewer link plays without any viewer token, leaves the address bar too, and a
    // reload of the tab still plays.
    const made = await dashboard.evaluate(async () => {
      const response = await fetch('/api/v1/streams/members/links', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ expiresIn: 600, maxViewers: 5 }),
      });
      return { status: response.status, body: await response.json() };
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    // Chromium holds six connections per server: the pages above (event feeds each) go first.
    for (const page of [bare, wrong, viewer]) await page.close();
    const linked = await open(made.body.url + '&muted=1');
    assert.ok(!linked.url().includes('grant='), linked.url());
    await waitFor('the linked stream plays', async () => isRed(await centreColour(linked)), 20_000);
    await linked.reload({ waitUntil: 'domcontentloaded' });
    await waitFor('it plays after a reload', async () => isRed(await centreColour(linked)), 20_000);
  } finally {
    for (const page of pages) if (!page.isClosed()) await page.close();
    await publisherPage.evaluate(async () => { await window.membersCam?.stop(); });
  }
});
