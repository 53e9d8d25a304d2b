// Debian's pebble (an ACME test CA) and pebble-challtestsrv (its mock DNS) as child processes, for
// the HTTPS tests. Validation is real: pebble's VA resolves the test name through the mock DNS
// (every A query answers 127.0.0.1) and connects to the server under test for TLS-ALPN-01.
// Everything listens on 127.0.0.1 only; scripts/test.sh runs the tests in a loopback-only namespace.

import { execFile, spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it; we close at once). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** GET over HTTPS trusting only `ca`; resolves to { status, headers, body } (body as a string). */
export function httpsGet(url, ca, timeout = 5_000) {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Retries `probe` until it resolves; after `timeout` ms, or at once when it throws an error marked
 * `fatal` (a process it waits for has died), throws `message()` with the last error.
 */
async function retryUntil(probe, timeout, message) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err;
    }
    if (lastError.fatal || Date.now() > deadline) throw new Error(`${message()}\nlast error: ${lastError.message}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Spawns a helper and keeps everything it prints, so a failure message can show it. */
function spawnLogged(command, args, env) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.output = '';
  const keep = (chunk) => { child.output += chunk; };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.spawnError = null;
  child.on('error', (err) => { child.spawnError = err; });
  return child;
}

/** SIGTERM, then SIGKILL if the child is still there after `grace` ms; resolves once it is gone. */
async function terminate(child, grace = 3_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.spawnError) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), grace);
  await exited;
  clearTimeout(timer);
}

/**
 * Makes the TLS identity of pebble's own HTTPS listeners (ACME directory and management API).
 *
 * Not a single self-signed certificate: openssl's `req -x509` marks it CA:TRUE, and rustls/webpki
 * (which the server's ACME client uses) refuses a CA certificate as an end-entity
 * (`CaUsedAsEndEntity`). So a throwaway CA signs a CA:FALSE serverAuth leaf for 127.0.0.1/localhost;
 * the CA file is what every client trusts (node here, the server through `--acme-ca-root`).
 */
async function makeListenerIdentity(dir) {
  const file = (name) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=pebble listener test CA',
    '-keyout', file('listener-ca.key'), '-out', file('listener-ca.pem')]);
  await run('openssl', ['req', ...ec, '-subj', '/CN=pebble', '-keyout', file('listener.key'), '-out', file('listener.csr')]);
  writeFileSync(file('listener.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ].join('\n') + '\n');
  await run('openssl', ['x509', '-req', '-in', file('listener.csr'), '-CA', file('listener-ca.pem'),
    '-CAkey', file('listener-ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('listener.ext'),
    '-out', file('listener.pem')]);
  return { caFile: file('listener-ca.pem'), certFile: file('listener.pem'), keyFile: file('listener.key') };
}

/**
 * Starts pebble-challtestsrv (DNS only) and pebble, validating challenges on `tlsPort` (TLS-ALPN-01)
 * and `httpPort` (HTTP-01). Resolves once pebble answers its directory and the mock DNS answers.
 *
 * Returns {
 *   directoryUrl,   // https://127.0.0.1:<port>/dir, for --acme-directory
 *   caFile, caPem,  // the CA of pebble's own listeners, for --acme-ca-root and node clients
 *   root(), intermediate(),  // PEM of pebble's issuing root / intermediate (new on every start)
 *   logs(),         // what pebble and the mock DNS printed, for failure messages
 *   stop(),         // ends both processes (the files stay: a restarted server still reads caFile)
 *   dispose(),      // stop() and remove the files
 * }
 */
export async function startPebble({ tlsPort, httpPort, timeout = 20_000 }) {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocast-e2e-pebble-'));
  const children = [];
  const logs = () => children.map((c) => `--- ${c.spawnfile} (exit ${c.exitCode ?? c.signalCode ?? 'running'}):\n${c.output}`).join('\n');
  const stop = () => Promise.all(children.map((c) => terminate(c)));
  const dispose = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { caFile, certFile, keyFile } = await makeListenerIdentity(dir);
    const caPem = readFileSync(caFile, 'utf8');
    const [acmePort, managementPort, dnsPort, dnsManagementPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);

    // DNS only: the other challenge servers stay off (empty address), the server under test answers
    // challenges itself. No AAAA answer, so pebble's VA dials 127.0.0.1.
    children.push(spawnLogged('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsManagementPort}`,
    ]));

    const configFile = join(dir, 'pebble-config.json');
    writeFileSync(configFile, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: certFile,
        privateKey: keyFile,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }, null, 2));
    // NOSLEEP: validate at once instead of after up to 15 s; NONCEREJECT=0: no deliberate badNonce
    // errors (retrying those is the ACME crate's business, and they only make the timing noisy).
    // No PEBBLE_VA_ALWAYS_VALID: the challenge is really validated against the server.
    children.push(spawnLogged('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
    }));

    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const managementUrl = `https://127.0.0.1:${managementPort}`;
    const exited = () => children.find((c) => c.exitCode !== null || c.signalCode !== null || c.spawnError);
    const probe = async (check) => {
      const dead = exited();
      if (dead) throw Object.assign(new Error(`${dead.spawnfile} is not running: ${dead.spawnError?.message ?? 'exited'}`), { fatal: true });
      await check();
    };
    const failure = (what) => () => `${what} within ${timeout} ms\n${logs()}`;

    await retryUntil(() => probe(async () => {
      const { status, body } = await httpsGet(directoryUrl, caPem);
      if (status !== 200 || !JSON.parse(body).newOrder) throw new Error(`directory answered ${status}: ${body}`);
    }), timeout, failure(`pebble did not answer ${directoryUrl}`));
    // The VA needs the mock DNS, so prove it answers the test name the way pebble will ask it.
    await retryUntil(() => probe(async () => {
      const resolver = new Resolver({ timeout: 500, tries: 1 });
      resolver.setServers([`127.0.0.1:${dnsPort}`]);
      const addresses = await resolver.resolve4('live.test');
      if (addresses.join() !== '127.0.0.1') throw new Error(`live.test resolved to ${addresses}`);
    }), timeout, failure(`pebble-challtestsrv did not resolve live.test to 127.0.0.1 on port ${dnsPort}`));

    const managementPem = async (path) => {
      const { status, body } = await httpsGet(managementUrl + path, caPem);
      if (status !== 200 || !body.includes('BEGIN CERTIFICATE')) throw new Error(`${managementUrl}${path}: ${status} ${body}\n${logs()}`);
      return body;
    };
    // Fetched once now: pebble makes a new hierarchy on each start, and the restart test stops it.
    const rootPem = await managementPem('/roots/0');
    const intermediatePem = await managementPem('/intermediates/0');
    return {
      directoryUrl,
      managementUrl,
      caFile,
      caPem,
      root: () => rootPem,
      intermediate: () => intermediatePem,
      logs,
      stop,
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
