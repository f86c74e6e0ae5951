// A real wasm tab whose admitting node dies before the tab has applied anything (issue #13):
// three `raft-node serve` processes on loopback (ports 7530-7532 unless STRANDED_BASE_PORT says
// otherwise; the proxy on the base port + 5). The tab opens the invite link through a proxy to
// the leader that forwards everything until the leader's `Admitted` frame and nothing after it,
// then the leader is killed (SIGKILL). The tab has applied no address record, so it knows the
// other members only from the `Admitted` frame; it must dial them and follow the new leader.
// Skips, saying why, only if the native binary cannot be built.
import { test, expect } from '@playwright/test';
import net from 'node:net';
import { buildNative, Cluster, liveState, waitFor } from './cluster.mjs';

test.describe.configure({ mode: 'serial' });

const BASE_PORT = Number(process.env.STRANDED_BASE_PORT ?? 7530);
const PROXY_PORT = BASE_PORT + 5;
/** `Admitted`'s kind byte (raft_core::wire::FrameKind::Admitted). */
const ADMITTED = 7;

let buildError = null;
let cluster = null;

test.beforeAll(async () => {
  test.setTimeout(1_900_000);
  buildError = buildNative();
  if (buildError) return;
  cluster = new Cluster({ ids: [1, 2, 3], basePort: BASE_PORT });
  cluster.startAll();
  await cluster.waitLeader();
});

test.afterAll(async () => {
  await cluster?.stopAll();
});

/**
 * A TCP proxy to `target` (`host:port`) that forwards everything, except that on a `/raft`
 * WebSocket it forwards the node's frames up to its `Admitted` and then nothing more in either
 * direction, leaving the tab's socket open and silent. `admitted` resolves then.
 */
function cutAfterAdmission(target) {
  const [host, port] = target.split(':');
  let onAdmitted;
  const admitted = new Promise((resolve) => {
    onAdmitted = resolve;
  });
  const sockets = new Set();
  const server = net.createServer((tab) => {
    const node = net.connect(Number(port), host);
    sockets.add(tab).add(node);
    let websocket = null;
    let headerDone = false;
    let cut = false;
    let pending = Buffer.alloc(0);
    tab.on('data', (chunk) => {
      if (websocket === null) websocket = chunk.toString('latin1').startsWith('GET /raft');
      if (!cut) node.write(chunk);
    });
    node.on('data', (chunk) => {
      if (cut) return;
      if (!websocket) {
        tab.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      if (!headerDone) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        tab.write(pending.subarray(0, end + 4));
        pending = pending.subarray(end + 4);
        headerDone = true;
      }
      // A node's frames are unmasked: [fin | opcode] [length] [extended length] [payload].
      while (pending.length >= 2) {
        let length = pending[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (pending.length < 4) return;
          length = pending.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (pending.length < 10) return;
          length = Number(pending.readBigUInt64BE(2));
          offset = 10;
        }
        if (pending.length < offset + length) return;
        const frame = pending.subarray(0, offset + length);
        pending = pending.subarray(offset + length);
        tab.write(frame);
        const binary = (frame[0] & 0x0f) === 2;
        if (binary && length >= 2 && frame[offset + 1] === ADMITTED) {
          cut = true;
          onAdmitted();
          return;
        }
      }
    });
    const drop = () => {
      tab.destroy();
      node.destroy();
    };
    tab.on('error', drop);
    tab.on('close', () => node.destroy());
    node.on('error', () => {
      if (!cut) drop();
    });
    node.on('close', () => {
      if (!cut) tab.destroy();
    });
  });
  return new Promise((resolve) => {
    server.listen(PROXY_PORT, '127.0.0.1', () =>
      resolve({
        address: `127.0.0.1:${PROXY_PORT}`,
        admitted,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      }),
    );
  });
}

test('a tab whose admitting leader is killed before it applied anything dials the members Admitted named and follows the new leader', async ({ browser }) => {
  test.skip(buildError !== null, `raft-node could not be built: ${buildError}`);
  test.setTimeout(120_000);
  for (let k = 0; k < 20; k++) await cluster.client({ op: 'put', key: `before-${k}`, value: String(k) });
  const leader = await cluster.waitLeader();
  const proxy = await cutAfterAdmission(cluster.address(leader));
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // The invite's node is the leader, reached through the proxy (the page is served through it too).
    const link = cluster.invite(['--ttl', '10m', '--uses', '1']).replace(/^http:\/\/[^/]+/, `http://${proxy.address}`);
    await page.goto(link);
    await Promise.race([
      proxy.admitted,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no Admitted within 30 s')), 30_000)),
    ]);
    await cluster.stop(leader);
    const atKill = await liveState(page);
    // The write after the failover: only a new leader can commit it.
    const after = await cluster.client({ op: 'put', key: 'after-kill', value: 'yes' }, { attempts: 300 });
    await waitFor(page, (index) => window.flotilla.live.state().applied >= index, after.index, 30_000).catch(
      async (error) => {
        throw new Error(`${error.message}; at the kill ${JSON.stringify(atKill)}; now ${JSON.stringify(await liveState(page))}`);
      },
    );
    const state = await liveState(page);
    expect(state.status).toBe('joined');
    expect(state.leader).not.toBe(leader);
    expect(state.applyViolations).toBe(0);
    const kv = new Map(await page.evaluate(() => window.flotilla.live.kv()));
    expect(kv.get('after-kill')).toBe('yes');
    expect(kv.get('before-19')).toBe('19');
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    proxy.close();
  }
});
