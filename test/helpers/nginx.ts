import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from './server.js';

/**
 * A real nginx load balancer in front of Berth replicas, as deployed in production
 * (docs/deploy.md shows the same configuration, generalised). It runs as a foreground
 * child (`daemon off`) with its configuration, logs, pid and temp paths in a private
 * directory, listening on a free port on 127.0.0.1.
 */

export const NGINX_BINARY = process.env.BERTH_TEST_NGINX ?? '/usr/sbin/nginx';

export interface Nginx {
  /** Base URL of the balancer, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  child: ChildProcess;
  /** Access log lines so far: `<method> <uri> <status> <upstream_addr>` per request. */
  accessLog(): string[];
  /** What nginx printed on stderr/stdout (start-up errors). */
  output(): string;
  /** Stops nginx (SIGQUIT: graceful) and removes its directory. */
  stop(): Promise<void>;
}

/**
 * The balancer's configuration: round-robin over `upstreams` (host:port), one request per
 * upstream connection (no upstream keepalive), so consecutive requests, even on one client
 * connection, spread over the replicas. Request and response bodies stream through
 * unbuffered and unlimited, as registry blobs need.
 */
export function nginxConfig(options: { dir: string; port: number; upstreams: string[] }): string {
  const { dir, port, upstreams } = options;
  const at = (name: string) => path.join(dir, name);
  return `worker_processes 1;
pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;
events { worker_connections 1024; }
http {
  log_format upstreams '$request_method $request_uri $status $upstream_addr';
  access_log ${at('access.log')} upstreams;
  client_body_temp_path ${at('client_body')};
  proxy_temp_path ${at('proxy')};
  fastcgi_temp_path ${at('fastcgi')};
  uwsgi_temp_path ${at('uwsgi')};
  scgi_temp_path ${at('scgi')};

  upstream berth {
${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=10s;`).join('\n')}
  }

  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://berth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
      proxy_next_upstream error timeout http_503;
    }
  }
}
`;
}

/** Throws (so a suite fails rather than skips) unless the nginx binary can run. */
export function requireNginx(): void {
  try {
    accessSync(NGINX_BINARY, constants.X_OK);
  } catch {
    throw new Error(
      `nginx is required by this test but ${NGINX_BINARY} is missing (run scripts/install-system-deps.sh, or set BERTH_TEST_NGINX)`,
    );
  }
}

/**
 * Starts nginx balancing over `upstreams` ("127.0.0.1:port" each) and waits until it accepts
 * connections. It listens on `port` (e.g. reserved with `freePort()` so the replicas can be told
 * the balancer's URL before it starts), or on a free port.
 */
export async function startNginx(upstreams: string[], port?: number): Promise<Nginx> {
  requireNginx();
  const dir = tempDir('berth-nginx-');
  // When the tests run as root, nginx workers run as `nobody` and must reach the temp paths.
  chmodSync(dir, 0o755);
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub));
  port ??= await freePort();
  const configFile = path.join(dir, 'nginx.conf');
  writeFileSync(configFile, nginxConfig({ dir, port, upstreams }));

  const child = spawn(NGINX_BINARY, ['-p', dir, '-c', configFile, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readFile = (name: string) => {
    try {
      return readFileSync(path.join(dir, name), 'utf8');
    } catch {
      return '';
    }
  };
  await waitForListener(port, child, () => `${out}${readFile('error.log')}`);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    accessLog: () => readFile('access.log').split('\n').filter(Boolean),
    output: () => `${out}${readFile('error.log')}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port nothing listens on right now (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForListener(port: number, child: ChildProcess, diagnostics: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}) before listening:\n${diagnostics()}`);
    }
    if (await canConnect(port)) return;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not listen on 127.0.0.1:${port} within 10 s:\n${diagnostics()}`);
    }
    await sleep(50);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
