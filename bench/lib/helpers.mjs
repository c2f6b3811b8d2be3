// Helpers shared by the benches (bench/http.mjs, bench/engines.mjs): HTTP on loopback, nginx as
// the static-file peer (and wrk, installed with it), the machine's description and number formats.
// Not a benchmark itself: bench/run.mjs runs the files beside it only.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasProgram } from '../../scripts/programs.mjs';

/** Where wrk and nginx are looked for: nginx is in /usr/sbin, which a user's PATH may lack. */
const SEARCH_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin`;

/** bench/nginx.conf: the template {@link startNginx} fills. */
const NGINX_CONF = path.join(import.meta.dirname, '..', 'nginx.conf');

/** A GET on loopback; resolves with the status, the body's length and (up to 64 MiB) the body. */
export function get(port, pathname, headers = {}, agent = false) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, headers, agent }, (res) => {
      const chunks = [];
      let length = 0;
      res.on('data', (chunk) => {
        length += chunk.length;
        if (length <= 64 * 1024 * 1024) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode, length, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** A port free on 127.0.0.1 now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** `tools` (wrk, nginx), installed with apt when missing (as root); false when they cannot be had. */
export function ensureTools(tools, log = console.log) {
  const missing = tools.filter((tool) => !hasProgram(tool, SEARCH_PATH));
  if (missing.length === 0) return true;
  if (process.getuid?.() !== 0) return false;
  const packages = missing.map((tool) => (tool === 'nginx' ? 'nginx-light' : tool));
  log(`installing ${packages.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
    stdio: 'ignore',
    env,
  });
  if (install.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore', env });
    install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
      stdio: 'ignore',
      env,
    });
  }
  // the package's own nginx service is not wanted
  spawnSync('sh', ['-c', 'command -v service >/dev/null && service nginx stop'], { stdio: 'ignore' });
  return tools.every((tool) => hasProgram(tool, SEARCH_PATH));
}

/**
 * Starts nginx with bench/nginx.conf in `prefix` (emptied first), serving `root` at `/<arch>/`
 * with `workers` worker processes; resolves with its port, its pid and a stop function.
 */
export async function startNginx({ prefix, root, arch, workers = 1, label = 'nginx' }) {
  await fs.rm(prefix, { recursive: true, force: true });
  await fs.mkdir(prefix, { recursive: true });
  const port = await freePort();
  const template = await fs.readFile(NGINX_CONF, 'utf8');
  const config = template
    .replaceAll('{{USER}}', process.getuid?.() === 0 ? 'user root;' : '')
    .replaceAll('{{WORKERS}}', String(workers))
    .replaceAll('{{PREFIX}}', prefix)
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{ARCH}}', arch)
    .replaceAll('{{ROOT}}', root);
  const file = path.join(prefix, 'nginx.conf');
  await fs.writeFile(file, config);
  const child = spawn('nginx', ['-c', file, '-p', prefix], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const reply = await get(port, '/').catch(() => undefined);
    if (reply) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nginx (${label}) did not start`);
    await sleep(50);
  }
  return { port, pid: child.pid, stop: () => child.kill('SIGQUIT') };
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    memoryGB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
  };
}

export function positiveInt(text, name) {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, not '${text}'`);
  return value;
}

export function fmtNum(value) {
  return Math.round(value).toLocaleString('en-US');
}

export function pct(value) {
  return `${(value * 100).toFixed(0)}%`;
}

export function fmtBytes(value) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let unit = 0;
  let scaled = value;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  return `${scaled.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
