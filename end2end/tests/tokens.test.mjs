// Publish tokens from the dashboard: create (secret shown once), disable/enable from the
// quick-action menu, delete with the confirmation; API keys created and revoked.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startServer, waitForHydration } from './support.mjs';

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill('tokens-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const apiTokens = () => page.evaluate(async () => (await fetch('/api/v1/tokens')).json());

test('create a token with two stream names and see its secret once', async () => {
  await page.getByRole('link', { name: /Create (your first )?token/ }).first().click();
  await page.waitForURL('**/tokens/new');
  await waitForHydration(page);
  await page.getByLabel('Label').fill('Studio A');
  await page.getByLabel('Stream name', { exact: true }).first().fill('main');
  await page.getByRole('button', { name: '+ Add stream name' }).click();
  await page.getByLabel('Stream name', { exact: true }).nth(1).fill('cam-*');
  await page.getByLabel(/Record/).check();
  await page.getByRole('button', { name: 'Create token' }).click();

  await page.getByRole('heading', { name: 'Token “Studio A” created' }).waitFor();
  const secret = await page.getByTestId('secret').textContent();
  assert.match(secret, /^fcp_[0-9a-f]{64}$/);
  await page.getByText('you will not see this secret again').waitFor();
  await page.getByText(`${server.url}/whip/main`).waitFor();

  const [token] = await apiTokens();
  assert.equal(token.label, 'Studio A');
  assert.deepEqual(token.streams, ['main', 'cam-*']);
  assert.equal(token.record, true);
  assert.ok(secret.endsWith(token.hint.slice('fcp_…'.length)));

  // Back on the list, the secret is nowhere to be seen.
  await page.getByRole('link', { name: 'Back to tokens' }).click();
  await page.waitForURL('**/tokens');
  const row = page.locator('tr', { hasText: 'Studio A' });
  await row.waitFor();
  assert.ok(!(await page.content()).includes(secret));
  await row.getByText('Enabled').waitFor();
  await row.getByText('Recording allowed').waitFor();
});

test('a validation error keeps what was typed and names the rule', async () => {
  await page.goto(server.url + '/tokens/new');
  await waitForHydration(page);
  await page.getByLabel('Label').fill('Bad one');
  await page.getByLabel('Stream name', { exact: true }).first().fill('no spaces allowed');
  // The browser's own pattern check would stop the submit: go around it to reach the server's.
  await page.evaluate(() => { document.querySelectorAll('form').forEach((f) => { f.noValidate = true; }); });
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.getByRole('alert').filter({ hasText: 'streams' }).waitFor();
  assert.equal(await page.getByLabel('Label').inputValue(), 'Bad one');
  assert.equal((await apiTokens()).length, 1, 'nothing was saved');
});

test('disable and enable from the quick-action menu without a reload', async () => {
  await page.goto(server.url + '/tokens');
  await waitForHydration(page);
  await page.evaluate(() => { window.__sameDocument = true; });
  const row = page.locator('tr', { hasText: 'Studio A' });
  await row.getByLabel('Actions for Studio A').click();
  await row.getByRole('menuitem', { name: 'Disable' }).click();
  await page.locator('tr', { hasText: 'Studio A' }).getByText('Disabled').waitFor();
  assert.equal((await apiTokens())[0].enabled, false);

  await page.locator('tr', { hasText: 'Studio A' }).getByLabel('Actions for Studio A').click();
  await page.locator('tr', { hasText: 'Studio A' }).getByRole('menuitem', { name: 'Enable' }).click();
  await page.locator('tr', { hasText: 'Studio A' }).getByText('Enabled').waitFor();
  assert.equal((await apiTokens())[0].enabled, true);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no full page load happened');
});

test('delete asks for confirmation naming the token', async () => {
  const row = page.locator('tr', { hasText: 'Studio A' });
  await row.getByLabel('Actions for Studio A').click();
  await row.getByRole('menuitem', { name: 'Delete…' }).click();
  const dialog = page.getByRole('alertdialog');
  await dialog.getByRole('heading', { name: 'Delete “Studio A”?' }).waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal((await apiTokens()).length, 1, 'cancel keeps the token');

  await row.getByLabel('Actions for Studio A').click();
  await row.getByRole('menuitem', { name: 'Delete…' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete token' }).click();
  await page.getByText('No publish tokens yet').waitFor();
  assert.deepEqual(await apiTokens(), []);
});

test('API keys are created once-visible and revoked', async () => {
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.waitForURL('**/api-keys');
  await page.getByLabel('Label').fill('ci script');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = await page.getByTestId('secret').textContent();
  assert.match(key, /^fck_[0-9a-f]{64}$/);
  const status = (k) => page.evaluate(async (k) =>
    (await fetch('/api/v1/me', { credentials: 'omit', headers: { Authorization: `Bearer ${k}` } })).status, k);
  assert.equal(await status(key), 200);

  await page.locator('tr', { hasText: 'ci script' }).getByRole('button', { name: 'Revoke…' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Revoke key' }).click();
  await page.getByText('No API keys').waitFor();
  assert.equal(await status(key), 401);
});
