// HTTPS in the binary with a certificate from a real ACME exchange: Debian's pebble issues the
// server a certificate for live.test over TLS-ALPN-01 (validation is real: pebble's VA resolves
// live.test to 127.0.0.1 through pebble-challtestsrv's DNS and does the challenge against the server;
// no PEBBLE_VA_ALWAYS_VALID). Chromium trusts pebble's root through an NSS database in a temporary
// HOME, maps live.test to 127.0.0.1, and goes live from the broadcaster in a secure context that is
// not localhost; a second page plays it. A restart with pebble gone serves the stored certificate.
// Prints the time from server start to a trusted handshake (issue 11 asks for it).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { freePort, startPebble } from './pebble.mjs';
import { expectPlaying, launchBrowser, nssHomeTrusting, startServer, waitForHydration } from './support.mjs';

const DOMAIN = 'live.test';
/** Bound on getting the first certificate (pebble without VA sleeps issues in a few seconds). */
const ISSUANCE_TIMEOUT = 60_000;
/** Bound on a restarted server presenting its stored certificate: no ACME round trip is allowed. */
const RESTART_TIMEOUT = 5_000;

let pebble;
let port;
let origin;
let dataDir;
let server;
let nss;
let browser;
let page;
/** The certificate of the first start: { fingerprint } (SHA-256, as node writes it). */
let issued;

const api = (path, body, method = 'POST') => page.evaluate(async ({ path, body, method }) => {
  const response = await fetch(path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  return { status: response.status, body: await response.json().catch(() => null) };
}, { path, body, method });

/** Starts (or restarts, on the same port and data folder) the server with ACME against pebble. */
function startAcmeServer() {
  return startServer([
    '--acme-domain', DOMAIN,
    '--acme-email', `ops@${DOMAIN}`,
    '--acme-directory', pebble.directoryUrl,
    '--acme-ca-root', pebble.caFile,
    '--rtc-ip', '127.0.0.1',
    '--public-url', origin,
  ], {
    listen: `127.0.0.1:${port}`,
    ...(dataDir ? { dataDir } : { keepDataDir: true }),
    // The ACME progress (and a failed order, in words) belongs in a failure message.
    env: { RUST_LOG: process.env.RUST_LOG ?? 'warn,ferrocast=info' },
  });
}

/**
 * One TLS handshake with 127.0.0.1:port as a client of live.test would do it: SNI live.test, no
 * ALPN, trusting `ca` only (pass none and rejectUnauthorized false to see what is presented).
 * Node checks the chain and that the certificate names live.test. Resolves to the peer
 * certificate (with its chain); rejects on any failure.
 */
function handshake({ ca, rejectUnauthorized = true }) {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: DOMAIN, ca, rejectUnauthorized });
    socket.setTimeout(3_000, () => socket.destroy(new Error('no TLS handshake in 3 s')));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      const authorizationError = socket.authorizationError;
      socket.end();
      resolve({ cert, authorizationError });
    });
    socket.once('error', reject);
  });
}

/** What the server presents right now, in words, for failure messages. */
async function describePresented() {
  try {
    const { cert, authorizationError } = await handshake({ rejectUnauthorized: false });
    return `it presents subject ${JSON.stringify(cert.subject)}, issuer ${JSON.stringify(cert.issuer)}, ` +
      `names ${cert.subjectaltname}; node says: ${authorizationError}`;
  } catch (err) {
    return `no handshake: ${err.message}`;
  }
}

/** Retries `handshake` trusting only pebble's root until it succeeds; bounded by `timeout` ms. */
async function waitForTrustedHandshake(timeout, what) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      return (await handshake({ ca: [pebble.root()] })).cert;
    } catch (err) {
      lastError = err;
    }
    // A server that died will not get better: say so now, not after the whole timeout.
    if (!server.running() || Date.now() > deadline) {
      const why = server.running() ? `within ${timeout} ms` : 'before the server exited';
      throw new Error(`${what}: no handshake trusted by pebble's root ${why} ` +
        `(last error: ${lastError.message}); ${await describePresented()}\n` +
        `--- server stderr:\n${server.stderr()}\n${pebble.logs()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  // The HTTPS port is fixed before anything starts: pebble validates TLS-ALPN-01 on it, and the
  // restart must come back on it. Nobody listens on httpPort: the server has no --http-listen, so
  // an HTTP-01 attempt would fail and only TLS-ALPN-01 can succeed.
  port = await freePort();
  origin = `https://${DOMAIN}:${port}`;
  pebble = await startPebble({ tlsPort: port, httpPort: await freePort() });
  server = await startAcmeServer();
  dataDir = server.dataDir;
});

after(async () => {
  await browser?.close();
  nss?.dispose();
  await server?.stop();
  await pebble?.dispose();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('pebble issues a certificate for live.test over TLS-ALPN-01; --listen serves HTTPS only', async () => {
  assert.match(server.url, new RegExp(`^https://127\\.0\\.0\\.1:${port}/?$`), 'the first line names the HTTPS address');

  const cert = await waitForTrustedHandshake(ISSUANCE_TIMEOUT, 'first start');
  const seconds = (performance.now() - server.startedAt) / 1000;
  console.log(`time from server start to a handshake with pebble's certificate: ${seconds.toFixed(2)} s`);

  // Trusting the root alone means the server sent the intermediate too (node has no other way to
  // build the chain); check it is pebble's intermediate of this run and that it signed the leaf.
  const leaf = new X509Certificate(cert.raw);
  const intermediate = new X509Certificate(pebble.intermediate());
  assert.equal(leaf.checkHost(DOMAIN), DOMAIN, `the certificate is for ${DOMAIN}: ${leaf.subjectAltName}`);
  assert.ok(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey), 'issued by pebble’s intermediate');
  assert.equal(cert.issuerCertificate?.fingerprint256, intermediate.fingerprint256, 'the served chain carries the intermediate');
  issued = { fingerprint: leaf.fingerprint256 };

  // No plaintext on the HTTPS port: an HTTP/1.1 request gets no HTTP answer (a TLS alert or a close).
  const reply = await new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => socket.write(`GET / HTTP/1.1\r\nHost: ${DOMAIN}\r\n\r\n`));
    let bytes = Buffer.alloc(0);
    socket.on('data', (chunk) => { bytes = Buffer.concat([bytes, chunk]); });
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('close', () => resolve(bytes.toString('latin1')));
    socket.on('error', (err) => (err.code === 'ECONNRESET' ? resolve(bytes.toString('latin1')) : reject(err)));
  });
  assert.ok(!reply.startsWith('HTTP/'), `plain HTTP is not served on --listen: ${JSON.stringify(reply.slice(0, 80))}`);
});

/**
 * Chromium that resolves live.test to 127.0.0.1 and trusts pebble's root, launched once.
 * Trust comes from the NSS database of a temporary HOME (Chromium on Linux reads $HOME/.pki/nssdb
 * for user-added roots; checked to work with Debian's Chromium 156), so the browser fully verifies
 * pebble's chain and the name: no --ignore-certificate-errors-spki-list, no ignoreHTTPSErrors.
 */
async function openBrowser() {
  if (page) return;
  nss = await nssHomeTrusting(pebble.root(), 'pebble-root');
  browser = await launchBrowser({
    args: [`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`],
    env: { ...process.env, HOME: nss.home },
  });
  page = await browser.context.newPage();
}

test('Chromium trusting pebble’s root: sign up over https, go live from the broadcaster, watch it', async () => {
  assert.ok(issued, 'needs the certificate of the first test');
  await openBrowser();

  const signup = await page.goto(`${origin}/signup`);
  assert.equal(signup.status(), 200);
  assert.match(signup.headers()['strict-transport-security'] ?? '', /max-age=\d+/, 'Strict-Transport-Security on a public page');
  await waitForHydration(page);
  assert.deepEqual(await page.evaluate(() => [window.isSecureContext, location.protocol]), [true, 'https:'],
    'a secure context that is not localhost');
  await page.getByLabel('Email').fill('https-e2e@example.com');
  await page.locator('#password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/tokens');

  // The dashboard's own response: HSTS on it, and the session cookie is __Host- and Secure.
  const dashboard = await page.goto(`${origin}/tokens`);
  assert.equal(dashboard.status(), 200);
  assert.match(dashboard.headers()['strict-transport-security'] ?? '', /max-age=\d+/, 'Strict-Transport-Security on the dashboard');
  const cookies = await browser.context.cookies(origin);
  const session = cookies.find((c) => c.name === '__Host-fc_session');
  assert.ok(session, `the session cookie is __Host-fc_session: ${cookies.map((c) => c.name)}`);
  assert.equal(session.secure, true, 'the session cookie is Secure');
  assert.equal(session.path, '/', '__Host- cookies have Path=/');
  assert.ok(!cookies.some((c) => c.name === 'fc_session'), 'no unprefixed session cookie');

  const account = (await api('/api/v1/me', null, 'GET')).body.accountId;
  const created = await api('/api/v1/tokens', { label: 'Studio', streams: ['main'] });
  assert.equal(created.status, 201, `token created: ${JSON.stringify(created.body)}`);
  const tokenId = created.body.token.id;

  await page.goto(`${origin}/tokens/${tokenId}/broadcast`);
  await page.waitForSelector('#broadcaster[data-ready="true"]', { timeout: 15_000 });
  assert.equal(await page.evaluate(() => window.isSecureContext), true, 'the broadcaster is a secure context');
  assert.equal(await page.locator('#bc-status').textContent(), 'Not live');
  await page.locator('#bc-start').click();
  await page.locator('#bc-status.live').waitFor({ timeout: 15_000 });

  const viewer = await browser.context.newPage();
  await viewer.goto(`${origin}/watch/${account}/main?muted=1`);
  assert.equal(await viewer.evaluate(() => location.origin), origin);
  await expectPlaying(viewer);

  await page.locator('#bc-start').click();
  await page.locator('#bc-status.off').waitFor();
  await viewer.close();
});

test('a restart with pebble gone serves the stored certificate at once', async () => {
  assert.ok(issued, 'needs the certificate of the first test');
  await server.stop();
  // With pebble gone any new order would fail: a handshake that works now proves reuse.
  await pebble.stop();
  server = await startAcmeServer();

  const cert = await waitForTrustedHandshake(RESTART_TIMEOUT, 'after the restart');
  const seconds = (performance.now() - server.startedAt) / 1000;
  console.log(`time from restart to a handshake with the stored certificate: ${seconds.toFixed(2)} s`);
  assert.equal(new X509Certificate(cert.raw).fingerprint256, issued.fingerprint, 'the same certificate as before the restart');

  // The browser (and its trust) outlives pebble: the root it trusts is in its NSS database.
  await openBrowser();
  const reloaded = await page.goto(`${origin}/tokens`);
  assert.ok(reloaded.ok(), `the dashboard loads after the restart: ${reloaded.status()}`);
  await waitForHydration(page);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
});
