// The Webhooks page: add an endpoint (its signing secret shown once), Send test event, the
// delivery log (delivered, retrying after a 500 with the answer shown), Resend. A small HTTP
// receiver on loopback plays the streamer's own system and checks each signature.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { launchBrowser, startServer, waitFor, waitForHydration } from './support.mjs';

let server;
let browser;
let page;
let receiver;
const received = [];
let answer = 200;

before(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(answer, { 'content-type': 'text/plain' }).end(answer === 200 ? 'ok' : 'receiver is down');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  server = await startServer(['--webhooks-private-networks']);
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill('webhooks-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.close();
});

/** Checks `Ferrocast-Signature: t=…,v1=…` the way a receiver would. */
function assertSigned({ headers, body }, secret) {
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(headers['ferrocast-signature']);
  assert.equal(v1, createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  assert.ok(Math.abs(Date.now() / 1000 - Number(t)) < 60);
}

test('an endpoint from the Webhooks page gets a signed test event, and its log shows retries and resends', async () => {
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.waitForURL('**/webhooks');
  await waitForHydration(page);
  const url = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.getByLabel('URL').fill(url);
  // Every event is ticked; keep two.
  for (const name of ['stream.ended', 'source.started', 'source.ended', 'viewers.first', 'viewers.none', 'recording.ready', 'publish.refused']) {
    await page.locator(`input[name="events[]"][value="${name}"]`).uncheck();
  }
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  const secret = await page.getByTestId('secret').textContent();
  assert.match(secret, /^fcw_[0-9a-f]{64}$/);
  const card = page.locator('section.webhook', { hasText: url });
  await card.waitFor();
  await card.getByText('stream.started').waitFor();
  const listed = await page.evaluate(async () => (await fetch('/api/v1/webhooks')).json());
  assert.deepEqual(listed[0].events, ['stream.started']);

  // Send test event: it arrives signed, and the log says delivered.
  await card.getByRole('button', { name: 'Send test event' }).click();
  await waitFor('the test event', () => received.length === 1, 10_000);
  assert.equal(JSON.parse(received[0].body).type, 'webhook.test');
  assertSigned(received[0], secret);
  await card.locator('tr[data-status="delivered"]', { hasText: 'webhook.test' }).waitFor({ timeout: 10_000 });

  // The receiver fails: the log says it will retry and shows the answer.
  answer = 500;
  await card.getByRole('button', { name: 'Send test event' }).click();
  await card.locator('tr[data-status="pending"]', { hasText: 'HTTP 500' }).waitFor({ timeout: 10_000 });
  answer = 200;
  await card.locator('tr[data-status="pending"]').waitFor({ state: 'detached', timeout: 15_000 });
  assert.equal(received.length, 3, 'one failure, one retry');
  assert.equal(received[2].body, received[1].body);

  // Resend the first: the same event id again.
  await card.locator('tr[data-status="delivered"]').last().getByRole('button', { name: 'Resend' }).click();
  await waitFor('the resent event', () => received.length === 4, 10_000);
  assert.equal(JSON.parse(received[3].body).id, JSON.parse(received[0].body).id);
  assertSigned(received[3], secret);
});
