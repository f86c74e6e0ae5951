// A real cluster for browser tests of durable tabs (voter.spec.mjs, web/bench/): `raft-node
// serve` processes on loopback, the admin CLI, the client API, and a persistent Chromium
// context whose origin is granted `durableStorage` over CDP (so navigator.storage.persist()
// returns true, as it does for an installed or bookmarked site).
import { chromium } from '@playwright/test';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const binary = join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'release', 'raft-node');
export const SECRET = 'voter-spec-secret-0123456789abcdef';
const env = { ...process.env, FLOTILLA_SECRET: SECRET, RUST_LOG: 'warn' };

/** Builds raft-node (release); returns the error text, or null. */
export function buildNative() {
  try {
    execFileSync('cargo', ['build', '--release', '-p', 'native-node', '--bin', 'raft-node'], {
      cwd: root,
      stdio: 'ignore',
      timeout: 1_800_000,
    });
    return existsSync(binary) ? null : `${binary} missing after the build`;
  } catch (error) {
    return error.message;
  }
}

export class Cluster {
  /** `ids` bootstrap as voters, on `basePort + id - 1`; `extra` adds flags to every node. */
  constructor({ ids = [1, 2, 3], basePort = 7500, extra = [] } = {}) {
    this.ids = ids;
    this.basePort = basePort;
    this.extra = extra;
    this.dataRoot = mkdtempSync(join(tmpdir(), 'flotilla-voter-'));
    this.processes = new Map();
  }

  address(id) {
    return `127.0.0.1:${this.basePort + id - 1}`;
  }

  get endpoints() {
    return this.ids.map((id) => this.address(id)).join(',');
  }

  start(id) {
    const child = spawn(
      binary,
      [
        'serve',
        '--id', String(id),
        '--listen', this.address(id),
        '--data-dir', join(this.dataRoot, `node-${id}`),
        '--bootstrap', this.ids.map((k) => `${k}=${this.address(k)}`).join(','),
        '--web-dir', join(root, 'web'),
        ...this.extra,
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr.on('data', () => {});
    this.processes.set(id, child);
    return child;
  }

  startAll() {
    for (const id of this.ids) this.start(id);
  }

  stop(id) {
    const child = this.processes.get(id);
    this.processes.delete(id);
    if (!child) return Promise.resolve();
    return new Promise((resolveExit) => {
      child.once('exit', resolveExit);
      child.kill('SIGKILL');
    });
  }

  async stopAll() {
    await Promise.all([...this.processes.keys()].map((id) => this.stop(id)));
    rmSync(this.dataRoot, { recursive: true, force: true });
  }

  cli(args) {
    return execFileSync(binary, [...args.slice(0, 1), '--endpoints', this.endpoints, ...args.slice(1)], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
  }

  /** The CLI's output and exit status, for commands expected to fail. */
  cliResult(args) {
    try {
      return { ok: true, out: this.cli(args) };
    } catch (error) {
      return { ok: false, out: `${error.stdout ?? ''}${error.stderr ?? ''}` };
    }
  }

  invite(args = []) {
    const out = this.cli(['admin', 'invite', ...args]).trim().split('\n');
    return out[out.length - 1].trim();
  }

  /** POST /client at any live node, following `not_leader` to the leader. */
  async client(body, { attempts = 100 } = {}) {
    let target = null;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const alive = this.ids.filter((id) => this.processes.has(id)).map((id) => this.address(id));
      const at = target ?? alive[attempt % alive.length];
      target = null;
      try {
        const response = await fetch(`http://${at}/client`, { method: 'POST', body: JSON.stringify(body) });
        const answer = await response.json();
        if (answer.ok) return answer;
        if (answer.error === 'not_leader' && answer.leader_address) target = answer.leader_address;
        else if (!answer.retryable && answer.error !== 'not_leader') throw new Error(JSON.stringify(answer));
      } catch (error) {
        if (String(error.message).startsWith('{')) throw error;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no answer to ${JSON.stringify(body)}`);
  }

  async status() {
    return this.client({ op: 'status', secret: SECRET });
  }

  async waitLeader() {
    for (let k = 0; k < 200; k++) {
      try {
        const status = await this.status();
        if (status.leader) return status.leader;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no leader');
  }
}

/**
 * A persistent Chromium context (its own profile folder, so OPFS survives reloads and
 * `persist()` can be granted) with `durableStorage` granted to `origin` when `durable`.
 */
export async function durableContext(origin, { durable = true } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'flotilla-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    headless: true,
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  if (durable) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Browser.grantPermissions', { origin, permissions: ['durableStorage'] });
  }
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export const liveState = (page) => page.evaluate(() => window.flotilla.live.state());

export const waitFor = (page, predicate, arg, timeout = 30_000) =>
  page.waitForFunction(predicate, arg, { timeout });
