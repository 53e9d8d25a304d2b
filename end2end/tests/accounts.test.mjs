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

test('the account page changes the password, logs out everywhere and deletes the account', async () => {
  const mine = `e2e-account-${Date.now()}@example.com`;
  // Browsers of its own: the shared one is logged in to another account.
  const own = await launchBrowser();
  const page = await own.context.newPage();
  await page.goto(server.url + '/signup');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(mine);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');
  // A second browser logged in to the same account.
  const other = await launchBrowser();
  const otherPage = await other.context.newPage();
  await otherPage.goto(server.url + '/login');
  const login = async (p, pw) => p.evaluate(async ([e, pw]) => (await fetch('/api/v1/login', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: e, password: pw }),
  })).status, [mine, pw]);
  assert.equal(await login(otherPage, password), 200);

  await page.locator('summary.account-button').click();
  await page.getByRole('link', { name: 'Account settings' }).click();
  await page.waitForURL('**/account');
  await page.getByRole('heading', { name: 'Account', exact: true }).waitFor();
  await waitForHydration(page);

  const form = page.locator('#change-password');
  await form.locator('#current_password').fill('not the password');
  await form.locator('#new_password').fill('a brand new secret');
  await form.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('the current password is not right').waitFor();
  await form.locator('#current_password').fill(password);
  await form.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed.').waitFor();
  assert.equal(await otherPage.evaluate(async () => (await fetch('/api/v1/me')).status), 401, 'the other browser is out');
  assert.equal(await page.evaluate(async () => (await fetch('/api/v1/me')).status), 200, 'this one stays in');

  await page.getByRole('button', { name: 'Log out everywhere' }).click();
  await page.waitForURL('**/login');
  assert.equal(await page.evaluate(async () => (await fetch('/api/v1/me')).status), 401);

  assert.equal(await login(page, 'a brand new secret'), 200);
  await page.goto(server.url + '/account');
  await waitForHydration(page);
  const remove = page.locator('#delete-account');
  await remove.locator('#password').fill('a brand new secret');
  await remove.getByRole('button', { name: 'Delete account' }).click();
  await page.waitForURL('**/signup');
  assert.equal(await login(page, 'a brand new secret'), 401, 'the account is gone');
  await other.close();
  await own.close();
});
