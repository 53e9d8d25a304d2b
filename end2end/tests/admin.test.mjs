// An invite-only instance run from the browser: the first account becomes the operator, makes an
// invite link on /admin, the invited person signs up with it, and the operator disables them.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startServer, waitForHydration } from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer(['--signup', 'invite']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const password = 'correct horse battery';

async function signUp(page, path, email) {
  await page.goto(server.url + path);
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

test('the operator invites someone from /admin, who joins with the link and can be disabled', async () => {
  const operator = await browser.context.newPage();
  const errors = [];
  operator.on('pageerror', (err) => errors.push(err.message));
  await signUp(operator, '/signup', 'owner@example.com');
  await operator.waitForURL('**/tokens');
  await operator.getByRole('link', { name: 'Admin' }).click();
  await operator.getByRole('heading', { name: 'Invites' }).waitFor();
  await waitForHydration(operator);
  await operator.getByLabel('For', { exact: true }).fill('Ana');
  await operator.getByRole('button', { name: 'Make invite link' }).click();
  const link = await operator.getByTestId('invite-link').textContent();
  assert.match(link, new RegExp(`^${server.url}/signup\\?invite=fci_[0-9a-f]{64}$`));
  await operator.locator('table.invites tr', { hasText: 'Ana' }).getByText('Open').waitFor();

  // Someone else, in a browser of their own: without the link they are told to ask; with it
  // they are in.
  const other = await launchBrowser();
  const guest = await other.context.newPage();
  await signUp(guest, '/signup', 'ana@example.com');
  await guest.getByText('needs an invite').waitFor();
  assert.equal(new URL(guest.url()).pathname, '/signup');
  await signUp(guest, new URL(link).pathname + new URL(link).search, 'ana@example.com');
  await guest.waitForURL('**/tokens');
  assert.equal(await guest.getByRole('link', { name: 'Admin' }).count(), 0, 'no Admin link for others');
  const adminForGuest = await guest.goto(server.url + '/admin');
  assert.equal(adminForGuest.status(), 404);

  // The operator's page shows the invite used by Ana and her account; Disable logs her out.
  await operator.reload();
  await waitForHydration(operator);
  await operator.locator('table.invites tr', { hasText: 'Ana' }).getByText('Used').waitFor();
  const row = operator.locator('table.admin-accounts tr', { hasText: 'ana@example.com' });
  await row.getByRole('button', { name: 'Disable' }).click();
  await row.getByText('Disabled').waitFor();
  const me = await guest.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(me, 401);
  await row.getByRole('button', { name: 'Enable' }).click();
  await row.getByRole('button', { name: 'Disable' }).waitFor();
  assert.deepEqual(errors, [], 'no errors on the operator page');
  await other.close();
  await operator.close();
});
