// Recording in the browser: the broadcaster's Record toggle (offered only when the token allows
// it, locked while live), the LIVE + REC badge from what the recorder does, and /recordings:
// Play shows moving video, Download saves the file, Delete removes row and file.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { launchBrowser, startServer, waitFor, waitForHydration, waitLive } from './support.mjs';

const execFileAsync = promisify(execFile);
let server;
let browser;
let page;
const tokens = {};

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
  await page.getByLabel('Email').fill('recording-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
  tokens.rec = (await api('/api/v1/tokens', { label: 'Recorder', streams: ['show', 'quiet'], record: true })).body.token.id;
  tokens.plain = (await api('/api/v1/tokens', { label: 'Plain', streams: ['plain'] })).body.token.id;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openBroadcaster(tokenId) {
  await page.goto(`${server.url}/tokens/${tokenId}/broadcast`);
  await page.waitForSelector('#broadcaster[data-ready="true"]', { timeout: 15_000 });
}

test('the Record toggle follows the token, is locked while live, and LIVE + REC shows what the recorder does', async () => {
  await openBroadcaster(tokens.plain);
  assert.ok(await page.locator('#bc-record').isDisabled(), 'a token without Record offers no recording');
  assert.ok(!(await page.locator('#bc-record').isChecked()));

  await openBroadcaster(tokens.rec);
  const record = page.locator('#bc-record');
  assert.ok(await record.isChecked(), 'on by default when the token allows it');
  assert.ok(!(await record.isDisabled()));
  await page.locator('#bc-record-hint', { hasText: 'Recordings' }).waitFor();
  await page.locator('#bc-stream').selectOption('show');
  await page.locator('#bc-start').click();
  await waitLive(page, { server });
  await page.locator('#bc-status.rec').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#bc-status').textContent(), 'Live + REC');
  assert.ok(await record.isDisabled(), 'locked while live');
  // The token list shows REC from the recorder too.
  const list = await browser.context.newPage();
  await list.goto(server.url + '/tokens');
  await waitForHydration(list);
  const tokenRow = list.locator('tr', { hasText: 'Recorder' });
  await tokenRow.locator('.badge', { hasText: /^Rec$/ }).waitFor({ timeout: 10_000 });
  await page.waitForTimeout(4_000);
  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  assert.ok(!(await record.isDisabled()), 'free again once not live');

  // Off: live without REC, and nothing is recorded.
  await record.uncheck();
  await page.locator('#bc-stream').selectOption('quiet');
  await page.locator('#bc-start').click();
  await waitLive(page, { server });
  await page.waitForTimeout(4_000);
  assert.equal(await page.locator('#bc-status').textContent(), 'Live', 'no REC when not recording');
  await tokenRow.locator('.badge', { hasText: /^Live$/ }).waitFor();
  assert.equal(await tokenRow.locator('.badge', { hasText: /^Rec$/ }).count(), 0, 'no REC on the token list either');
  await list.close();
  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  const quiet = await api('/api/v1/recordings?stream=quiet', null, 'GET');
  assert.deepEqual(quiet.body, [], 'record=0: nothing recorded');
  const rows = await waitFor('the recording completes', async () => {
    const list = (await api('/api/v1/recordings', null, 'GET')).body;
    return list.length === 1 && list[0].status === 'complete' && list;
  });
  assert.equal(rows[0].streamName, 'show');
  assert.ok(rows[0].durationMs >= 3_000, `duration ${rows[0].durationMs} ms`);
});

test('/recordings plays a recording in the page, downloads it, and deletes row and file', async () => {
  const [recording] = (await api('/api/v1/recordings', null, 'GET')).body;
  await page.goto(server.url + '/recordings');
  await waitForHydration(page);
  const row = page.locator(`tr[data-recording="${recording.id}"]`);
  await row.waitFor();
  await row.getByText('Complete').waitFor();
  assert.match(await row.textContent(), /vp8 \d+×\d+ · opus/, 'codecs and size are listed');

  await row.getByRole('button', { name: 'Play' }).click();
  const video = page.locator('#recording-video');
  await video.waitFor();
  const start = await waitFor('the video has a picture', () => video.evaluate((v) => v.videoWidth > 0 && v.currentTime));
  await waitFor('the video plays on', () => video.evaluate((v, t0) => v.currentTime > t0 + 1, start), 10_000);

  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'Download' }).click()]);
  assert.match(download.suggestedFilename(), /^show-.*\.webm$/);
  const saved = await download.path();
  assert.equal(statSync(saved).size, recording.bytes, 'the whole file');
  const file = join(server.dataDir, 'recordings', `${recording.id}.webm`);
  assert.deepEqual(readFileSync(saved), readFileSync(file));

  await page.getByRole('button', { name: 'Close' }).click();
  await row.getByRole('button', { name: 'Delete…' }).click();
  await page.getByRole('alertdialog').getByText('Delete the recording of “show · main”?').waitFor();
  await page.getByRole('button', { name: 'Delete recording' }).click();
  await row.waitFor({ state: 'detached' });
  assert.ok(!existsSync(file), 'the file is gone');
  assert.equal((await api(`/api/v1/recordings/${recording.id}`, null, 'GET')).status, 404);
  await page.getByText('No recordings yet').waitFor();
});

for (const [codec, container] of [['H264', 'mp4'], ['VP9', 'webm'], ['AV1', 'webm']]) {
  test(`${codec} from the browser: recorded as ${container.toUpperCase()}, and it plays on /recordings`, async () => {
    await openBroadcaster(tokens.rec);
    await page.locator('#bc-settings summary').click();
    await page.locator('#bc-codec').selectOption(codec);
    await page.locator('#bc-stream').selectOption('show');
    await page.locator('#bc-record').check();
    await page.locator('#bc-start').click();
    await page.locator('#bc-status.rec').waitFor({ timeout: 15_000 });
    await page.waitForTimeout(4_000);
    await page.locator('#bc-start').click();
    await page.locator('#bc-status.off').waitFor();
    const recording = await waitFor(`the ${codec} recording completes`, async () => {
      const list = (await api('/api/v1/recordings', null, 'GET')).body;
      return list.find((r) => r.videoCodec === codec.toLowerCase() && r.status === 'complete');
    });
    assert.equal(recording.container, container);
    // Debian's ffmpeg reads the file the browser's encoder made, to the end, without an error.
    const file = join(server.dataDir, 'recordings', `${recording.id}.${container}`);
    const probe = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file]);
    assert.equal(probe.stdout.trim(), codec.toLowerCase());
    // Frames keep the file's own times (-enc_time_base -1): a browser's frames are not evenly
    // spaced, and at the frame rate ffmpeg guesses two close ones would share an output time.
    const decoded = await execFileAsync('ffmpeg', ['-v', 'error', '-i', file, '-enc_time_base', '-1', '-f', 'null', '-']);
    assert.equal(decoded.stderr, '', 'decodes without an error');

    await page.goto(server.url + '/recordings');
    await waitForHydration(page);
    const row = page.locator(`tr[data-recording="${recording.id}"]`);
    await row.getByRole('button', { name: 'Play' }).click();
    const video = page.locator('#recording-video');
    const start = await waitFor('a picture', () => video.evaluate((v) => v.videoWidth > 0 && v.currentTime));
    await waitFor('it plays on', () => video.evaluate((v, t0) => v.currentTime > t0 + 1, start), 10_000);
  });
}
