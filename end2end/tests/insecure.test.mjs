// The online broadcaster opened over plain HTTP under a real host name: browsers give the camera
// only to secure pages, so instead of failing on a missing navigator.mediaDevices the page says it
// needs HTTPS, names the flags that fix it, and links to the README section the server serves.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startServer, waitForHydration } from './support.mjs';

// Chromium counts 127.0.0.1 and localhost as secure contexts; any other name over http:// is not.
const HOST = 'insecure.test';

let server;
let browser;
let page;
let origin;
let tokenId;

before(async () => {
  server = await startServer();
  origin = `http://${HOST}:${new URL(server.url).port}`;
  // Resolved inside Chromium, so no DNS is needed in the loopback-only namespace.
  browser = await launchBrowser({ args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  page = await browser.context.newPage();
  await page.goto(origin + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill('insecure-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
  tokenId = await page.evaluate(async () => {
    const response = await fetch('/api/v1/tokens', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label: 'Plain HTTP', streams: ['main'] }),
    });
    if (response.status !== 201) throw new Error(`create token: ${response.status}`);
    return (await response.json()).token.id;
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('over plain HTTP the broadcaster explains the need for HTTPS instead of asking for the camera', async () => {
  // Uncaught errors: the notice must replace the broadcaster, not sit next to a crash.
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${origin}/tokens/${tokenId}/broadcast`);
  await page.waitForSelector('#broadcaster[data-ready="insecure"]', { timeout: 15_000 });

  // Guards the premise: were this a secure context, the test would prove nothing.
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  // Insecure pages have no mediaDevices at all, so no getUserMedia can have been called.
  assert.equal(await page.evaluate(() => typeof navigator.mediaDevices), 'undefined');

  const notice = page.locator('#bc-insecure');
  assert.ok(await notice.isVisible(), 'the notice is shown');
  const text = await notice.textContent();
  for (const expected of ['needs HTTPS', origin, `--acme-domain ${HOST}`, '--tls-cert', '--tls-key', '--trusted-proxy']) {
    assert.ok(text.includes(expected), `the notice mentions ${expected}: ${text}`);
  }
  assert.equal(await page.locator('#bc-start').count(), 0, 'nothing to start');
  assert.deepEqual(pageErrors, [], 'the broadcaster stopped cleanly');

  // The help must come from this server (it may be the only copy of the README at hand).
  const [help] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${origin}/help/https`, { timeout: 15_000 }),
    notice.locator('a[href="/help/https"]').click(),
  ]);
  assert.equal(help.status(), 200);
  assert.match(help.headers()['content-type'], /^text\/plain/);
  const body = await help.text();
  assert.ok(body.includes('Run it on a server'), body.slice(0, 200));
  assert.ok(body.includes('--acme-domain'), 'the help tells how to get a certificate');
});
