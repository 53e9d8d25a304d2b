// Shared set-up of the browser tests: a fresh ferrocast server and a fresh Chromium per suite.
// scripts/test.sh runs everything inside a network namespace that has only loopback.

import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const run = promisify(execFile);

/** Flags that keep Chromium quiet, offline and ready for WebRTC on loopback (TESTING.md). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-domain-reliability',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Starts the server binary on a loopback port. Resolves to
 * { url, dataDir, startedAt, stderr(), running(), stop() } once it prints its address
 * (`listening on http://…`, or `https://…` when it serves TLS).
 *
 * Options: `listen` (default 127.0.0.1:0, a free port); `dataDir` to reuse an existing data folder
 * (a restart; it is never removed); `keepDataDir` to keep the new one after stop() (so a second
 * start can reuse it; the caller removes it); `env`, extra environment variables.
 * `startedAt` is performance.now() just before the spawn, for timing what the server does next.
 */
export async function startServer(extraArgs = [], { listen = '127.0.0.1:0', dataDir, keepDataDir = false, env = {} } = {}) {
  const bin = process.env.FERROCAST_BIN;
  const siteRoot = process.env.FERROCAST_SITE_ROOT;
  if (!bin || !siteRoot) throw new Error('FERROCAST_BIN and FERROCAST_SITE_ROOT must be set (scripts/test.sh does)');
  const created = !dataDir;
  const ownsDataDir = created && !keepDataDir;
  dataDir ??= mkdtempSync(join(tmpdir(), 'ferrocast-e2e-data-'));
  const startedAt = performance.now();
  // Tests sign up as many accounts as they like unless they ask for another sign-up mode.
  const signup = extraArgs.includes('--signup') ? [] : ['--signup', 'open'];
  const child = spawn(bin, ['--listen', listen, '--data-dir', dataDir, '--site-root', siteRoot, ...signup, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const stop = async () => {
    // Already gone, or never spawned (no pid, and maybe never an 'exit'): nothing to wait for.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A server that ignores SIGTERM must not keep the port from a restart on it.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  let url;
  try {
    url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${stderr}`)), 30_000);
      let stdout = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        const match = stdout.match(/listening on (https?:\/\/\S+)/);
        if (match) { clearTimeout(timer); resolve(match[1]); }
      });
      child.on('error', (err) => { clearTimeout(timer); reject(new Error(`cannot run ${bin}: ${err.message}`)); });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${stderr}`)); });
    });
  } catch (err) {
    await stop();
    // Nobody will restart on a folder whose server never came up.
    if (created) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return { url, dataDir, startedAt, stderr: () => stderr, running, stop };
}

/**
 * Launches Debian's Chromium with a new empty profile; resolves to { context, close() }.
 * Options: `args`, flags added to CHROMIUM_ARGS; `env`, the browser's whole environment (default:
 * this process's), e.g. another HOME whose NSS database trusts a test CA (see nssHomeTrusting).
 */
export async function launchBrowser({ args = [], env } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'ferrocast-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    ...(env && { env }),
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Makes a temporary HOME whose NSS database ($HOME/.pki/nssdb, where Chromium on Linux keeps user
 * trust) trusts `caPem` to issue server certificates. Resolves to { home, dispose() }.
 * certutil comes from Debian's libnss3-tools.
 */
export async function nssHomeTrusting(caPem, nickname = 'test-root') {
  const home = mkdtempSync(join(tmpdir(), 'ferrocast-e2e-home-'));
  const db = `sql:${join(home, '.pki', 'nssdb')}`;
  mkdirSync(join(home, '.pki', 'nssdb'), { recursive: true });
  writeFileSync(join(home, 'root.pem'), caPem);
  await run('certutil', ['-d', db, '-N', '--empty-password']);
  // "C,,": a trusted CA for TLS server certificates (not for mail or code signing).
  await run('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', nickname, '-i', join(home, 'root.pem')]);
  return { home, dispose: () => rmSync(home, { recursive: true, force: true }) };
}

/** Waits until the wasm has hydrated the page (the app sets body[data-hydrated]). */
export async function waitForHydration(page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 20_000 });
}

/** Polls `check` until it returns something truthy (bounded); resolves to that value. */
export async function waitFor(what, check, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** [r, g, b] of the first <video> of a page or frame at (fx, fy), in fractions of its size; null before a picture. */
export function videoPixel(target, fx = 0.5, fy = 0.5) {
  return target.evaluate(({ fx, fy }) => {
    const video = document.querySelector('video');
    if (!video?.videoWidth) return null;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(video, 0, 0);
    return Array.from(ctx.getImageData(Math.floor(canvas.width * fx), Math.floor(canvas.height * fy), 1, 1).data.slice(0, 3));
  }, { fx, fy });
}

/**
 * Signs up `email` through the JSON API from `page` (which must be on the server's origin, so the
 * session cookie lands in the browser) and creates one publish token. Resolves to
 * { account, secret, tokenId }.
 */
export function signUpWithToken(page, email, token) {
  return page.evaluate(async ({ email, token }) => {
    const post = (path, body) => fetch(path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const signup = await post('/api/v1/signup', { email, password: 'correct horse battery' });
    if (signup.status !== 201) throw new Error(`sign-up: ${signup.status}`);
    const me = await (await fetch('/api/v1/me')).json();
    const created = await (await post('/api/v1/tokens', token)).json();
    return { account: me.accountId, secret: created.secret, tokenId: created.token.id };
  }, { email, token });
}

/** Asserts that the hosted viewer on `viewer` plays: a decoded picture, then time and frames advancing. */
export async function expectPlaying(viewer) {
  await viewer.waitForSelector('#player[data-state="playing"]', { timeout: 15_000 });
  const sample = () => viewer.evaluate(async () => {
    const video = document.querySelector('video');
    const stats = await window.ferrocastViewer.player.getStats();
    return { width: video.videoWidth, time: video.currentTime, frames: stats.framesDecoded };
  });
  const first = await waitFor('a decoded picture', async () => { const s = await sample(); return s.width > 0 && s.frames > 0 && s; });
  await new Promise((r) => setTimeout(r, 1_000));
  const later = await sample();
  assert.ok(later.frames > first.frames && later.time > first.time, `the video plays: ${JSON.stringify([first, later])}`);
}

/** A port free for both UDP and TCP on 127.0.0.1 (the SFU's media port, fixed so a test can firewall it). */
export async function freeMediaPort() {
  const { createSocket } = await import('node:dgram');
  const { createServer } = await import('node:net');
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    const port = await new Promise((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    const tcp = createServer();
    const tcpFree = await new Promise((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise((resolve) => udp.close(resolve));
    if (tcpFree) {
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    }
  }
  throw new Error('no port free for both UDP and TCP');
}

/**
 * Drops traffic to and from `port` in this network namespace with nftables (Debian's `nft`):
 * `protocols` is a list of 'udp' and/or 'tcp'; `iface`, when given, limits it to what leaves or
 * enters through that interface. Resolves to { restore() }. Each call makes its own table, so
 * rules of parallel tests never meet.
 */
export async function blockPort(port, protocols, { iface } = {}) {
  const table = `ferrocast_block_${port}_${protocols.join('_')}${iface ? `_${iface}` : ''}`;
  const out = iface ? `oifname "${iface}" ` : '';
  const into = iface ? `iifname "${iface}" ` : '';
  const rules = protocols.flatMap((p) => [
    `add rule inet ${table} out ${out}${p} dport ${port} drop`,
    `add rule inet ${table} out ${out}${p} sport ${port} drop`,
    `add rule inet ${table} in ${into}${p} dport ${port} drop`,
  ]);
  const script = [
    `add table inet ${table}`,
    `add chain inet ${table} out { type filter hook output priority 0; policy accept; }`,
    `add chain inet ${table} in { type filter hook input priority 0; policy accept; }`,
    ...rules,
  ].join('\n');
  await nft(script);
  return { restore: () => nft(`delete table inet ${table}`) };
}

async function nft(script) {
  const child = spawn('/usr/sbin/nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  child.stdin.end(script);
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`nft failed (${code}): ${stderr}\n${script}`);
}

/** The transport protocol ('udp' or 'tcp') and candidate types of an RTCPeerConnection's selected pair, evaluated in `page`. */
export function selectedPair(page, pcExpression) {
  return page.evaluate(async (expression) => {
    // eslint-disable-next-line no-new-func
    const pc = new Function(`return (${expression});`)();
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId && stats.get(pairId);
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      protocol: local.protocol, localType: local.candidateType, remoteType: remote.candidateType,
      relayProtocol: local.relayProtocol ?? null, remoteAddress: remote.address, remotePort: remote.port,
    };
  }, pcExpression);
}

/**
 * Launches Chromium in a network namespace of its own, joined to this one by a veth pair: this
 * side is `hostAddress` (10.77.N.1, where a server can listen), Chromium's side 10.77.N.2. A test
 * can then cut that one browser off (see blockInterface) while pages in this namespace carry on.
 * Resolves to { context, hostAddress, iface, close() }. Extra Chromium flags in `args(hostAddress)`.
 */
export async function launchBrowserBehindVeth({ args = () => [] } = {}) {
  const n = 1 + Math.floor(Math.random() * 250);
  const hostAddress = `10.77.${n}.1`;
  const iface = `fcv${n}a`;
  const peerIface = `fcv${n}b`;
  const dir = mkdtempSync(join(tmpdir(), 'ferrocast-e2e-netns-'));
  const pidFile = join(dir, 'pid');
  const wrapper = join(dir, 'chromium');
  // The wrapper makes the namespace, says its pid, waits for its end of the veth, then becomes Chromium.
  writeFileSync(wrapper, `#!/bin/sh
exec unshare -n -- sh -c '
  echo $$ > "${pidFile}"
  i=0
  until ip link show ${peerIface} >/dev/null 2>&1; do i=$((i + 1)); [ $i -gt 400 ] && exit 1; sleep 0.05; done
  ip link set lo up
  ip addr add 10.77.${n}.2/24 dev ${peerIface}
  ip link set ${peerIface} up
  ip route add default via 10.77.${n}.1
  exec /usr/bin/chromium "$@"' chromium "$@"
`, { mode: 0o755 });
  const profile = join(dir, 'profile');
  const joinNamespace = (async () => {
    const pid = await waitFor('the browser namespace', async () => {
      try { return (await import('node:fs')).readFileSync(pidFile, 'utf8').trim(); } catch { return null; }
    });
    await run('ip', ['link', 'add', iface, 'type', 'veth', 'peer', 'name', peerIface, 'netns', pid]);
    await run('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', iface]);
    await run('ip', ['link', 'set', iface, 'up']);
  })();
  const [context] = await Promise.all([
    chromium.launchPersistentContext(profile, {
      executablePath: wrapper, headless: true, args: [...CHROMIUM_ARGS, ...args(hostAddress)],
    }),
    joinNamespace,
  ]);
  return {
    context, hostAddress, iface,
    async close() {
      await context.close();
      await run('ip', ['link', 'del', iface]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * 1:1 NAT in this namespace, as a cloud provider does it: packets arriving on `iface` for
 * `publicAddress` are rewritten to `privateAddress` (and the answers back, by conntrack).
 * Resolves to { remove() }.
 */
export async function natOneToOne(iface, publicAddress, privateAddress) {
  const table = `ferrocast_nat_${iface}`;
  await nft([
    `add table ip ${table}`,
    `add chain ip ${table} pre { type nat hook prerouting priority -100; policy accept; }`,
    `add rule ip ${table} pre iifname "${iface}" ip daddr ${publicAddress} dnat to ${privateAddress}`,
  ].join('\n'));
  return { remove: () => nft(`delete table ip ${table}`) };
}

/** Drops everything that crosses network interface `iface` (both ways) until restore(). */
export async function blockInterface(iface) {
  const table = `ferrocast_cut_${iface}`;
  await nft([
    `add table inet ${table}`,
    `add chain inet ${table} in { type filter hook input priority 0; policy accept; }`,
    `add chain inet ${table} out { type filter hook output priority 0; policy accept; }`,
    `add rule inet ${table} in iifname "${iface}" drop`,
    `add rule inet ${table} out oifname "${iface}" drop`,
  ].join('\n'));
  return { restore: () => nft(`delete table inet ${table}`) };
}

/**
 * Debian's coturn on 127.0.0.1 with `use-auth-secret` (the TURN REST scheme: credentials made
 * from `secret`, as `--turn-secret` makes them), relaying on loopback. Resolves to { port, stop() }.
 */
export async function startCoturn(secret) {
  const port = await freeMediaPort();
  const dir = mkdtempSync(join(tmpdir(), 'ferrocast-e2e-coturn-'));
  const child = spawn('/usr/bin/turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', '--allow-loopback-peers',
    `--listening-port=${port}`, `--min-port=${port + 1}`, `--max-port=${port + 60}`,
    '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=ferrocast.test',
    '--no-tls', '--no-dtls', '--no-cli', '--no-software-attribute', '--simple-log',
    `--pidfile=${join(dir, 'turnserver.pid')}`, `--userdb=${join(dir, 'turndb')}`, `--log-file=${join(dir, 'turn.log')}`,
  ], { stdio: 'ignore' });
  const { createConnection } = await import('node:net');
  // Listening once its TCP port accepts (it opens UDP and TCP together).
  await waitFor('coturn to listen', () => new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  }), 10_000);
  return {
    port,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until a broadcaster page is live. A timeout says what the page shows (its status and
 * error) and, given `server`, the end of the server's log: enough to tell a refusal from a stall.
 */
export async function waitLive(page, { timeout = 15_000, server } = {}) {
  try {
    await page.locator('#bc-status.live').waitFor({ timeout });
  } catch (error) {
    const status = await page.locator('#bc-status').textContent().catch(() => '?');
    const shown = await page.locator('#bc-error').textContent().catch(() => '');
    const log = server ? `\nserver log:\n${server.stderr().split('\n').slice(-20).join('\n')}` : '';
    throw new Error(`not live after ${timeout} ms: status "${status}", error "${shown}"${log}`, { cause: error });
  }
}
