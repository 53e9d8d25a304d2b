// Sign up → dashboard → log out → log in, in real Chromium, with hydration checked.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startServer, waitForHydration } from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const email = `e2e-${Date.now()}@example.com`;
const password = 'correct horse battery';

test('the root of a fresh session leads to the login page', async () => {
  const page = await browser.context.newPage();
  const response = await page.goto(server.url + '/');
  assert.equal(response.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/login');
  await assert.doesNotReject(page.getByRole('heading', { name: 'Log in' }).waitFor());
  await page.close();
});

test('the password field reveals its text only once the page is hydrated', async () => {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  const input = page.locator('#password');
  assert.equal(await input.getAttribute('type'), 'password');
  await page.getByRole('button', { name: 'Show' }).click();
  // Only the wasm handles this click: a server-rendered page without it stays "password".
  await page.waitForFunction(() => document.querySelector('#password').type === 'text');
  assert.equal(await page.getByRole('button', { name: 'Hide' }).getAttribute('aria-pressed'), 'true');
  assert.deepEqual(errors, [], 'no errors in the browser console');
  await page.close();
});

test('sign up, land on the dashboard, log out, and log back in', async () => {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();

  await page.waitForURL('**/tokens');
  await page.getByRole('heading', { name: 'Publish tokens', exact: true }).waitFor();
  await page.getByText('No publish tokens yet').waitFor();
  const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
  assert.equal(me.email, email);
  assert.match(me.accountId, /^[a-z0-9]{6}$/);

  // Client-side navigation between sections, then the account menu.
  await page.getByRole('link', { name: 'Live' }).click();
  await page.waitForURL('**/live');
  await page.getByRole('heading', { name: 'Live streams' }).waitFor();
  await page.locator('summary.account-button').click();
  await page.getByText(me.accountId, { exact: true }).waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL('**/login');

  // The session is gone: the dashboard sends us back to login.
  const unauthorised = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(unauthorised, 401);
  await page.goto(server.url + '/tokens');
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/tokens');

  // A wrong password is refused in words, then the right one gets in.
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.locator('#password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'email or password is incorrect' }).waitFor();
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL('**/tokens');
  await page.getByRole('heading', { name: 'Publish tokens', exact: true }).waitFor();
  await page.close();
});

test('an unknown page is a 404 with a way back', async () => {
  const page = await browser.context.newPage();
  const response = await page.goto(server.url + '/no/such/page');
  assert.equal(response.status(), 404);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await page.close();
});
