// Simulcast in Chromium: the module's Publisher and the broadcaster's Simulcast checkbox send three
// layers from the fake camera at 1280×720; the SFU reports them; /watch?quality=low shows the ¼
// picture and its quality menu moves to the full one in place (same srcObject); a publisher
// that stops its top layer (setParameters active: false) moves the viewer down without a freeze;
// under a real 600 kbit/s bottleneck (tc tbf on the veth to a viewer's own namespace) auto moves
// the viewer to a layer that fits without freezing, and back up once the limit is lifted.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  freeMediaPort, launchBrowser, launchBrowserBehindVeth, signUpWithToken, startServer, waitFor, waitLive,
} from './support.mjs';

const run = promisify(execFile);

let server;
let browser;
let publisherPage;
let account;
let secret;
let tokenId;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  publisherPage = await browser.context.newPage();
  await publisherPage.goto(server.url + '/login');
  ({ account, secret, tokenId } = await signUpWithToken(publisherPage, 'simulcast-e2e@example.com', {
    label: 'sim', streams: ['sim', 'desk'],
  }));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The public state's layers of the main source: [{ layer, rid, width, height, active }]. */
async function layersOf(stream, { url = server.url, owner = account } = {}) {
  const response = await fetch(`${url}/api/v1/streams/${owner}/${stream}`);
  const state = await response.json();
  return state.sources?.find((s) => s.sourceId == null)?.layers ?? [];
}

/** Waits until the SFU reports three layers of the given widths, all sending. */
function threeLayers(stream, where) {
  return waitFor('three layers at 1280, 640 and 320 wide', async () => {
    const layers = await layersOf(stream, where);
    const widths = layers.filter((l) => l.active).map((l) => l.width);
    return JSON.stringify(widths) === '[1280,640,320]' && layers;
  }, 20_000);
}

/** Follows the first <video> of a viewer page: its width and the longest gap between frames. */
function watchFrames(page) {
  return page.evaluate(() => {
    const video = document.querySelector('video');
    window.frameLog = { last: 0, longestGap: 0, since: performance.now() };
    const onFrame = (now) => {
      const log = window.frameLog;
      if (log.last) log.longestGap = Math.max(log.longestGap, now - log.last);
      log.last = now;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
}

const videoWidth = (page) => page.evaluate(() => document.querySelector('video')?.videoWidth ?? 0);

test('the module publishes three layers; /watch?quality=low shows the small one and the menu switches in place', async () => {
  await publisherPage.evaluate(async ({ token }) => {
    const { Publisher } = await import('/ferrocast.js');
    const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720, frameRate: 30 } });
    const publisher = new Publisher({ url: '/whip/sim', token, simulcast: true, maxBitrateKbps: 2500 });
    window.simPublisher = publisher;
    await publisher.start(camera);
  }, { token: secret });
  const layers = await threeLayers('sim');
  assert.deepEqual(layers.map((l) => [l.layer, l.rid]), [['high', 'h'], ['medium', 'm'], ['low', 'l']]);

  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/sim?muted=1&quality=low`);
  await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  const playing = Date.now();
  await waitFor('the low layer (320 wide)', async () => (await videoWidth(viewer)) === 320, 3_000);
  assert.ok(Date.now() - playing <= 3_000);
  const stream = await viewer.evaluate(() => { window.firstStream = document.querySelector('video').srcObject; return !!window.firstStream; });
  assert.ok(stream);

  // The menu: Auto, then the layers by their height; choosing 720p switches in place.
  const menu = viewer.locator('#quality');
  await menu.waitFor({ state: 'visible' });
  const entries = await menu.locator('option').allTextContents();
  assert.deepEqual(entries.slice(1), ['720p', '360p', '180p'], JSON.stringify(entries));
  assert.match(entries[0], /^Auto/);
  assert.equal(await menu.inputValue(), 'low');
  await menu.selectOption('high');
  await waitFor('the high layer (1280 wide)', async () => (await videoWidth(viewer)) === 1280, 5_000);
  assert.ok(await viewer.evaluate(() => document.querySelector('video').srcObject === window.firstStream),
    'the same MediaStream: no renegotiation, no new track');
  await viewer.close();
});

test('a publisher that stops its top layer moves the viewer down without a freeze, and back', async () => {
  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/sim?muted=1&quality=high`);
  await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await waitFor('the high layer', async () => (await videoWidth(viewer)) === 1280, 5_000);
  await watchFrames(viewer);
  await new Promise((r) => setTimeout(r, 1_000));

  const setTop = (active) => publisherPage.evaluate(async (active) => {
    const sender = window.simPublisher.transceivers.video.sender;
    const params = sender.getParameters();
    for (const encoding of params.encodings) if (encoding.rid === 'h') encoding.active = active;
    await sender.setParameters(params);
  }, active);
  await setTop(false);
  await waitFor('the medium layer (640 wide)', async () => (await videoWidth(viewer)) === 640, 5_000);
  await new Promise((r) => setTimeout(r, 1_000));
  const gap = await viewer.evaluate(() => window.frameLog.longestGap);
  assert.ok(gap < 500, `the picture froze for ${Math.round(gap)} ms when the top layer stopped`);
  const stopped = await waitFor('the top layer reported stopped', async () => {
    const layers = await layersOf('sim');
    return layers[0]?.active === false && layers;
  });
  assert.equal(stopped[0].rid, 'h', 'a stopped layer keeps its rank');

  await setTop(true);
  await waitFor('the high layer again', async () => (await videoWidth(viewer)) === 1280, 10_000);
  await viewer.close();
  await publisherPage.evaluate(() => window.simPublisher.stop());
});

test('the broadcaster’s Simulcast checkbox sends three layers and is locked while live', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.url}/tokens/${tokenId}/broadcast`);
  await page.waitForSelector('#broadcaster[data-ready="true"]', { timeout: 15_000 });
  await page.locator('#bc-settings summary').click();
  await page.getByText('needs a Chromium-based browser').waitFor();
  await page.locator('#bc-simulcast').check();
  await page.locator('#bc-stream').selectOption('desk');
  await page.locator('#bc-start').click();
  await waitLive(page, { server });
  assert.ok(await page.locator('#bc-simulcast').isDisabled(), 'simulcast is fixed while live');
  await threeLayers('desk');

  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/desk?muted=1&quality=medium`);
  await waitFor('the medium layer (640 wide)', async () => (await videoWidth(viewer)) === 640, 15_000);
  await viewer.close();
  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  assert.ok(!(await page.locator('#bc-simulcast').isDisabled()), 'simulcast can change once stopped');
  await page.close();
});

test('auto under a real 600 kbit/s bottleneck: down to a layer that fits without a freeze, back up once lifted', async () => {
  const httpPort = await freeMediaPort();
  const mediaPort = await freeMediaPort();
  const audience = await launchBrowserBehindVeth();
  const shaped = await startServer(['--rtc-ip', audience.hostAddress, '--rtc-udp-port', String(mediaPort), '--rtc-tcp-port', 'off'], {
    listen: `${audience.hostAddress}:${httpPort}`,
  });
  const publisher = await browser.context.newPage();
  const viewer = await audience.context.newPage();
  let limited = false;
  const limit = async (on) => {
    // The veth's end in this namespace: what leaves it is the SFU's media to the viewer.
    const args = on
      ? ['qdisc', 'add', 'dev', audience.iface, 'root', 'tbf', 'rate', '600kbit', 'burst', '20kb', 'latency', '300ms']
      : ['qdisc', 'del', 'dev', audience.iface, 'root'];
    await run('tc', args);
    limited = on;
  };
  try {
    await publisher.goto(shaped.url + '/login');
    const owner = await signUpWithToken(publisher, 'simulcast-tbf@example.com', { label: 'tbf', streams: ['tbf'] });
    await publisher.evaluate(async ({ token }) => {
      const { Publisher } = await import('/ferrocast.js');
      // Plain http on a veth address is no secure context (no camera): a moving 1280×720 canvas.
      const canvas = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
      const ctx = canvas.getContext('2d');
      let tick = 0;
      setInterval(() => {
        ctx.fillStyle = `hsl(${tick % 360} 60% 40%)`;
        ctx.fillRect(0, 0, 1280, 720);
        ctx.fillStyle = '#fff';
        ctx.fillRect((tick++ * 8) % 1200, 300, 80, 80);
      }, 33);
      window.simPublisher = new Publisher({ url: '/whip/tbf', token, simulcast: true, maxBitrateKbps: 2500 });
      await window.simPublisher.start(canvas.captureStream(30));
    }, { token: owner.secret });
    // A canvas track under CPU pressure may be sent smaller than 1280×720, and the browser's
    // encoder adapts sizes as it goes: the layer a viewer shows is what the SFU reports for its
    // pair, and whether it fits is that layer's bitrate.
    const where = { url: shaped.url, owner: owner.account };
    await waitFor('three sending layers', async () => {
      const layers = await layersOf('tbf', where);
      return layers.length === 3 && layers.every((l) => l.active);
    }, 30_000);
    await viewer.goto(`${shaped.url}/watch/${owner.account}/tbf?muted=1`);
    await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
    // The owner's figures are the engine's own (the public feed's rates move only when they
    // change by a fifth, to spare its watchers: too coarse to judge "fits" by).
    const liveLayers = () => publisher.evaluate(async () => {
      const streams = await (await fetch('/api/v1/streams')).json();
      return streams.find((s) => s.streamName === 'tbf')?.sources.find((s) => s.sourceId == null)?.layers ?? [];
    });
    /** The layer pair 0 shows (the SFU's word, on #player) with that layer's figures: { layer, bitrateBps, width }. */
    const shown = async () => {
      const layer = await viewer.locator('#player').getAttribute('data-layer');
      const figures = (await liveLayers()).find((l) => l.layer === layer);
      return { layer, bitrateBps: figures?.bitrateBps ?? null, width: figures?.width ?? null };
    };
    const onTop = async () => (await shown()).layer === 'high';
    const fits = (layer) => layer.bitrateBps != null && layer.bitrateBps <= 600_000;
    // The viewer is held on high, and handed to auto as the limit begins: where auto would stand
    // before it depends on how loaded this machine is (the delay-based estimate reads scheduling
    // jitter as queueing), and moving down from the top is what is tested here.
    await viewer.evaluate(() => window.ferrocastViewer.player.selectLayer(0, 'high'));
    await waitFor('the high layer', onTop, 15_000);
    await limit(true);
    await viewer.evaluate(() => window.ferrocastViewer.player.selectLayer(0, 'auto'));
    await new Promise((r) => setTimeout(r, 5_000));
    const at5 = await shown();
    console.log(`# 5 s into 600 kbit/s: the viewer shows ${JSON.stringify(at5)}, ${await videoWidth(viewer)} wide`);
    assert.ok(fits(at5), `5 s into the limit the viewer shows a layer that does not fit: ${JSON.stringify(at5)}`);
    await watchFrames(viewer);
    // What the viewer received, and the layer it was on each second: a freeze's message says
    // whether packets were lost or keyframes asked for, and which layer moves came with it.
    const received = () => viewer.evaluate(async () => {
      let video = {};
      (await window.ferrocastViewer.player.session.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') video = s; });
      return { lost: video.packetsLost, nacks: video.nackCount, plis: video.pliCount, keyframes: video.keyFramesDecoded };
    });
    const before = await received();
    const layersShown = [];
    for (let second = 0; second < 20; second++) {
      await new Promise((r) => setTimeout(r, 1_000));
      const { layer, bitrateBps } = await shown();
      layersShown.push(`${layer}@${Math.round((bitrateBps ?? 0) / 1000)}k`);
    }
    const gap = await viewer.evaluate(() => window.frameLog.longestGap);
    console.log(`# the next 20 s under the limit: longest gap between frames ${Math.round(gap)} ms`);
    const context = `received before ${JSON.stringify(before)}, after ${JSON.stringify(await received())}; layers each second ${layersShown.join(' ')}`;
    assert.ok(gap < 1_000, `the picture froze for ${Math.round(gap)} ms under the limit: ${context}`);
    const at25 = await shown();
    assert.ok(fits(at25), `it stayed on a layer that fits: ${JSON.stringify(at25)}`);

    await limit(false);
    const lifted = performance.now();
    // Typically 3-9 s; up to ~16 s on a loaded two-core machine, where scheduling jitter makes
    // the delay-based estimate fail some trials (each failure doubles the wait, up to 6 s).
    await waitFor('back on the high layer once the limit is lifted', onTop, 20_000);
    console.log(`# back on the high layer ${Math.round(performance.now() - lifted)} ms after the limit was lifted`);
  } finally {
    if (limited) await limit(false).catch(() => {});
    await publisher.evaluate(() => window.simPublisher?.stop()).catch(() => {});
    await publisher.close();
    await viewer.close();
    await audience.close();
    await shaped.stop();
  }
});
