// The online broadcaster: log in, open a token's broadcaster from its quick action, go live with
// the fake camera, watch it at /watch and through the share panel's iframe code on another origin,
// mix a text overlay, publish two sources, and see browser and server refusals in words.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { expectPlaying, launchBrowser, startServer, videoPixel, waitFor, waitForHydration, waitLive } from './support.mjs';

let server;
let browser;
let page;
let account;
const tokens = {};
let embedServer;

const api = (path, body, method = 'POST') => page.evaluate(async ({ path, body, method }) => {
  const response = await fetch(path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  return { status: response.status, body: await response.json().catch(() => null) };
}, { path, body, method });

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill('broadcaster-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
  account = (await api('/api/v1/me', null, 'GET')).body.accountId;
  tokens.studio = (await api('/api/v1/tokens', { label: 'Studio', streams: ['main'], multisource: true })).body.token.id;
  tokens.off = (await api('/api/v1/tokens', { label: 'Off air', streams: ['main'], enabled: false })).body.token.id;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => (embedServer ? embedServer.close(resolve) : resolve()));
});

const pixel = videoPixel;

async function openBroadcaster(target, tokenId) {
  await target.goto(`${server.url}/tokens/${tokenId}/broadcast`);
  await target.waitForSelector('#broadcaster[data-ready="true"]', { timeout: 15_000 });
}

test('go live from the token quick action, watch it, share the iframe, stop', async () => {
  await page.goto(server.url + '/tokens');
  await waitForHydration(page);
  const row = page.locator('tr', { hasText: 'Studio' });
  await row.getByRole('button', { name: /Actions for Studio/ }).click();
  await row.getByRole('menuitem', { name: 'Broadcast' }).click();
  await page.waitForURL(`**/tokens/${tokens.studio}/broadcast`);
  await page.waitForSelector('#broadcaster[data-ready="true"]', { timeout: 15_000 });
  assert.equal(await page.locator('#bc-status').textContent(), 'Not live');
  const cameras = await page.locator('#bc-cam option').allTextContents();
  assert.ok(cameras.length > 0 && cameras.every((label) => label.length > 0), `camera labels: ${cameras}`);
  assert.ok((await page.locator('#bc-mic option').count()) > 0, 'microphones listed');

  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/main?muted=1`);
  await viewer.getByText('Not live').waitFor();

  await page.locator('#bc-start').click();
  await waitLive(page, { server });
  assert.ok(await page.locator('#bc-size').isDisabled(), 'capture size is fixed while live');
  assert.ok(await page.locator('#bc-codec').isDisabled(), 'codec is fixed while live');
  assert.ok(!(await page.locator('#bc-bitrate').isDisabled()), 'bitrate can change while live');
  const chosen = await page.locator('#bc-codec').inputValue();
  const sent = await waitFor('the outbound codec', () => page.evaluate(async () => {
    const stats = await window.broadcaster.state.publisher.session.pc.getStats();
    let mime = null;
    stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') mime = stats.get(s.codecId)?.mimeType ?? null; });
    return mime;
  }));
  assert.equal(sent.split('/')[1].toUpperCase(), chosen, 'the codec setting is what goes out');
  await expectPlaying(viewer);

  // The share panel's iframe code plays on another origin.
  const code = await page.locator('#sh-iframe').inputValue();
  assert.match(code, new RegExp(`^<iframe src="${server.url}/watch/${account}/main`));
  assert.equal(await page.locator('#sh-link').inputValue(), `${server.url}/watch/${account}/main`);
  embedServer = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>embed</title>${code}`);
  });
  await new Promise((resolve) => embedServer.listen(0, '127.0.0.1', resolve));
  const embed = await browser.context.newPage();
  await embed.goto(`http://127.0.0.1:${embedServer.address().port}/`);
  const frame = await waitFor('the iframe', async () => embed.frames().find((f) => f.url().includes('/watch/')));
  await frame.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await waitFor('the embedded video has a picture', async () => (await pixel(frame)) !== null);
  await embed.close();

  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  await viewer.waitForSelector('#player[data-state="offline"]', { timeout: 15_000 });
  await viewer.close();
});

test('the mixer’s text overlay reaches the viewer', async () => {
  await openBroadcaster(page, tokens.studio);
  // No screen in a headless test: the mixer composes the camera on a colour background.
  await page.evaluate(() => { document.getElementById('mx-screen').checked = false; });
  await page.locator('#bc-source').selectOption('mixer');
  await page.locator('#bc-mixer').waitFor();
  await waitFor('the mixer canvas in the preview', () => page.evaluate(() => document.getElementById('bc-preview').videoWidth === 1280));
  await page.locator('#mx-text').fill('ON AIR');
  await page.locator('#bc-start').click();
  await waitLive(page, { server });
  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/main?muted=1`);
  await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  // The lower third is a #ffcc00 band at the bottom of the picture.
  await waitFor('the yellow overlay band', async () => {
    const c = await pixel(viewer, 0.9, 0.97);
    return c && c[0] > 190 && c[1] > 150 && c[2] < 90;
  });
  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  await viewer.close();
});

test('two broadcasters publish sources cam1 and cam2 on one stream', async () => {
  const second = await browser.context.newPage();
  for (const [target, id] of [[page, 'cam1'], [second, 'cam2']]) {
    await openBroadcaster(target, tokens.studio);
    await target.locator('#bc-multi').check();
    await target.locator('#bc-source-id').fill(id);
    await target.locator('#bc-start').click();
    await waitLive(target, { server });
  }
  const state = await api(`/api/v1/streams/${account}/main`, null, 'GET');
  assert.deepEqual(state.body.sources.map((s) => s.sourceId).sort(), ['cam1', 'cam2']);
  const viewer = await browser.context.newPage();
  await viewer.goto(`${server.url}/watch/${account}/main?muted=1&source=cam1`);
  await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  await viewer.locator('#source-bar').getByRole('button', { name: 'cam2' }).waitFor();
  await viewer.close();
  for (const target of [page, second]) await target.locator('#bc-start').click();
  await second.close();
});

test('refusals are explained: blocked camera, disabled token', async () => {
  const blocked = await browser.context.newPage();
  await blocked.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));
  });
  await blocked.goto(`${server.url}/tokens/${tokens.studio}/broadcast`);
  await blocked.locator('#bc-error', { hasText: 'was blocked' }).waitFor({ timeout: 15_000 });
  await blocked.close();

  await openBroadcaster(page, tokens.off);
  await page.locator('#bc-start').click();
  const error = page.locator('#bc-error');
  await error.waitFor({ timeout: 15_000 });
  assert.match(await error.textContent(), /\(403\).*disabled/);
  assert.equal(await page.locator('#bc-status').textContent(), 'Not live');
});
