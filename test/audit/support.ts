import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** A line of a JSON-lines audit sink (the fields of GET /api/v1/audit). */
export interface ExportedEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  project: string | null;
  outcome: 'success' | 'failure' | 'denied';
  ip: string | null;
  detail?: Record<string, unknown>;
}

/** Every line of a JSON-lines file (none when it does not exist). */
export function readJsonLines(path: string): ExportedEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ExportedEntry);
}

/** Polls `check` every 50 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An RFC 5424 message taken apart. */
export interface SyslogMessage {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sdId: string;
  params: Record<string, string>;
  msg: string;
}

const HEADER = /^<(\d{1,3})>(\d+) (\S+) (\S+) (\S+) (\S+) (\S+) \[(\S+)((?: [^=\s\]"]+="(?:[^"\\\]]|\\.)*")*)\] (.*)$/s;

/** Parses one RFC 5424 message with one SD-ELEMENT; throws when it is not one. */
export function parseSyslog(text: string): SyslogMessage {
  const m = HEADER.exec(text);
  assert.ok(m, `not an RFC 5424 message with structured data: ${text}`);
  const params: Record<string, string> = {};
  for (const p of m[9]!.matchAll(/ ([^=\s\]"]+)="((?:[^"\\\]]|\\.)*)"/g)) params[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, '$1');
  return {
    pri: Number(m[1]),
    version: Number(m[2]),
    timestamp: m[3]!,
    hostname: m[4]!,
    appName: m[5]!,
    procId: m[6]!,
    msgId: m[7]!,
    sdId: m[8]!,
    params,
    msg: m[10]!,
  };
}

/** A local syslog receiver over UDP (one message per datagram). */
export async function udpReceiver(): Promise<{ port: number; messages: string[]; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  const messages: string[] = [];
  socket.on('message', (data) => messages.push(data.toString('utf8')));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, messages, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

/** A local syslog receiver over TCP with RFC 6587 octet-counting framing (`<length> <message>`). */
export async function tcpReceiver(port = 0): Promise<{ port: number; messages: string[]; close(): Promise<void> }> {
  const messages: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let pending = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      for (;;) {
        const space = pending.indexOf(0x20);
        if (space === -1) return;
        const length = Number(pending.subarray(0, space).toString('ascii'));
        assert.ok(Number.isInteger(length) && length > 0, `octet count expected, got ${pending.subarray(0, space).toString()}`);
        if (pending.length < space + 1 + length) return;
        messages.push(pending.subarray(space + 1, space + 1 + length).toString('utf8'));
        pending = pending.subarray(space + 1 + length);
      }
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    messages,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TCP port on 127.0.0.1 nobody listens on (yet). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
