import dgram from 'node:dgram';
import { open, stat, type FileHandle } from 'node:fs/promises';
import net from 'node:net';

/** Where formatted audit entries go. `write` resolves once the entries are handed over (file: on disk). */
export interface AuditSink {
  write(messages: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * JSON lines appended to a file, synced to disk before the cursor moves. Reopens the path when
 * it was moved away (log rotation by rename) or deleted.
 */
export class FileSink implements AuditSink {
  private handle: FileHandle | null = null;
  private inode = -1;

  constructor(private readonly path: string) {}

  async write(lines: string[]): Promise<void> {
    const handle = await this.current();
    try {
      await handle.appendFile(lines.map((l) => `${l}\n`).join(''));
      await handle.datasync();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {});
  }

  /** The open file, reopened when the path now names another file (or none). */
  private async current(): Promise<FileHandle> {
    const onDisk = await stat(this.path).catch(() => null);
    if (this.handle && onDisk?.ino === this.inode) return this.handle;
    await this.close();
    this.handle = await open(this.path, 'a', 0o640);
    this.inode = (await this.handle.stat()).ino;
    return this.handle;
  }
}

/** JSON lines on the process's standard output. */
export class StdoutSink implements AuditSink {
  write(lines: string[]): Promise<void> {
    return new Promise((resolve, reject) =>
      process.stdout.write(lines.map((l) => `${l}\n`).join(''), (err) => (err ? reject(err) : resolve())),
    );
  }

  async close(): Promise<void> {}
}

/** Largest syslog datagram sent; longer messages are cut (RFC 5426 §3.2 allows receivers to). */
const MAX_DATAGRAM = 65_000;

/** RFC 5426: one message per UDP datagram. Delivery is the network's: a lost datagram is not resent. */
export class UdpSyslogSink implements AuditSink {
  private socket: dgram.Socket | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async write(messages: string[]): Promise<void> {
    const socket = (this.socket ??= this.open());
    for (const message of messages) {
      const bytes = Buffer.from(message).subarray(0, MAX_DATAGRAM);
      await new Promise<void>((resolve, reject) => socket.send(bytes, this.port, this.host, (err) => (err ? reject(err) : resolve())));
    }
  }

  async close(): Promise<void> {
    this.socket?.close();
    this.socket = null;
  }

  private open(): dgram.Socket {
    const socket = dgram.createSocket(net.isIPv6(this.host) ? 'udp6' : 'udp4');
    socket.unref();
    // A send error rejects its write; this only keeps an asynchronous ICMP error from crashing the process.
    socket.on('error', () => {
      if (this.socket === socket) this.socket = null;
      socket.close();
    });
    return socket;
  }
}

/** How long a TCP connection to the syslog receiver may take. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * RFC 6587 octet counting over one long-lived TCP connection: `<length> <message>`. A write
 * resolves once the kernel took the bytes; a broken connection fails the write (the batch is
 * sent again on a new connection next round).
 */
export class TcpSyslogSink implements AuditSink {
  private socket: net.Socket | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async write(messages: string[]): Promise<void> {
    const socket = this.socket ?? (await this.connect());
    const frames = Buffer.concat(messages.map((m) => Buffer.from(`${Buffer.byteLength(m)} ${m}`)));
    await new Promise<void>((resolve, reject) => {
      socket.write(frames, (err) => {
        if (!err) return resolve();
        socket.destroy();
        reject(err);
      });
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.end(resolve));
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port, timeout: CONNECT_TIMEOUT_MS });
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      socket.once('timeout', () =>
        fail(new Error(`syslog receiver ${this.host}:${this.port} did not accept a connection within ${CONNECT_TIMEOUT_MS} ms`)),
      );
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.removeAllListeners('timeout').removeAllListeners('error').setTimeout(0).setKeepAlive(true).unref();
        // A receiver that closes or resets the connection: the next write opens a new one.
        socket.on('error', () => socket.destroy());
        socket.on('close', () => {
          if (this.socket === socket) this.socket = null;
        });
        this.socket = socket;
        resolve(socket);
      });
    });
  }
}
