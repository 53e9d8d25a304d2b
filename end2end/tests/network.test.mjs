// Reaching every network: a browser whose network drops UDP publishes and watches over ICE-TCP.
// Each test firewalls its own server's media port with nftables inside the test namespace.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockPort, expectPlaying, freeMediaPort, launchBrowser, selectedPair, signUpWithToken, startServer,
} from './support.mjs';

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Publishes a moving canvas with the module from `page`; resolves once the server answered. */
function publishCanvas(page, { token, url, options = {} }) {
  return page.evaluate(async ({ token, url, options }) => {
    const { Publisher } = await import('/ferrocast.js');
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const ctx = canvas.getContext('2d');
    let tick = 0;
    setInterval(() => {
      ctx.fillStyle = '#208020';
      ctx.fillRect(0, 0, 320, 240);
      ctx.fillStyle = '#fff';
      ctx.fillRect((tick++ * 4) % 300, 100, 20, 20);
    }, 33);
    window.publisher = new Publisher({ url, token, ...options });
    window.publisherStates = [];
    window.publisher.addEventListener('state', (e) => window.publisherStates.push(e.detail));
    await window.publisher.start(canvas.captureStream(30));
  }, { token, url, options });
}

test('with UDP to the media port dropped, Chromium publishes and watches over ICE-TCP', async () => {
  const port = await freeMediaPort();
  const server = await startServer(['--rtc-udp-port', String(port)]);
  const block = await blockPort(port, ['udp']);
  const publisherPage = await browser.context.newPage();
  const viewerPage = await browser.context.newPage();
  try {
    await publisherPage.goto(server.url + '/login');
    const { account, secret } = await signUpWithToken(publisherPage, 'tcp@example.com', { label: 'tcp', streams: ['tcp'] });
    await publishCanvas(publisherPage, { token: secret, url: '/whip/tcp' });
    await publisherPage.waitForFunction(() => window.publisher.state === 'live', null, { timeout: 20_000 });
    await viewerPage.goto(`${server.url}/watch/${account}/tcp?muted=1`);
    await expectPlaying(viewerPage);
    const published = await selectedPair(publisherPage, 'window.publisher.session.pc');
    const watched = await selectedPair(viewerPage, 'window.ferrocastViewer.player.session.pc');
    for (const [who, pair] of [['publisher', published], ['viewer', watched]]) {
      assert.equal(pair?.protocol, 'tcp', `${who}'s selected pair is TCP: ${JSON.stringify(pair)}`);
      assert.equal(pair.remotePort, port, `${who} reached the TCP twin of the UDP port`);
    }
  } finally {
    await block.restore();
    await publisherPage.close();
    await viewerPage.close();
    await server.stop();
  }
});
