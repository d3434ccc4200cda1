import type http from 'node:http';
import type net from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Where a body's bytes go when the connection reads them straight into the destination's
 * memory (a download's segments) instead of into a fresh buffer per read.
 */
export interface ReadSink {
  /** Memory at the destination's write position that the next read may fill from its start (at most `max` bytes), or null when none is free now. */
  room(max: number): Uint8Array | null;
  /** The first `n` bytes of the memory the last room() gave hold the body's next bytes. */
  filled(n: number): void;
  /** After room() gave null: resolves once it is worth asking again (rejects when the destination failed). */
  roomFreed(): Promise<void>;
}

/** Where a raw body (tls-fetch.ts) keeps its reader into a sink, when its connection has one. */
export const READ_INTO = Symbol('berth.rawBody.readInto');

/**
 * How to read a raw body straight into a sink's memory, when its connection allows it (an
 * agent of readIntoAgent): a function reading the rest of the body into the sink, resolving once
 * every byte is in. Null: read the body as a stream. Either way, not both.
 */
export function bodyReader(body: Readable): ((sink: ReadSink) => Promise<void>) | null {
  return (body as { [READ_INTO]?: (sink: ReadSink) => Promise<void> })[READ_INTO] ?? null;
}

/** The scratch buffer of a connection: what reads fill when nobody gave them a destination (Node's own reads are 64 KiB). */
const SCRATCH_BYTES = 64 * 1024;

/** The body being read into a sink: bytes still due, and how the read ends. */
interface Into {
  sink: ReadSink;
  remaining: number;
  /** Memory the next read fills (room() asked right after the previous one), null: the scratch buffer. */
  next: Uint8Array | null;
  /** Bytes read elsewhere (before the switch, or into the scratch buffer: copied out) that the sink has not taken yet, oldest first. */
  parked: Uint8Array[];
  settle(err?: Error): void;
}

/**
 * The reads of one connection made with net's `onread`: each read lands in memory chosen for it.
 * Until a body is handed a sink, that is the connection's scratch buffer, and each read is
 * copied out and emitted as a 'data' event, so Node's HTTP client parses the response head (and
 * any small body) exactly as on a normal socket. Once a raw body (tls-fetch.ts) takes the
 * connection for a sink, reads land in the sink's memory: no allocation, no copy, no stream
 * machinery per read. Reading 1 GiB from Distribution and hashing it cost 0.80–0.83 CPU-s
 * this way against 1.26–1.43 through the socket's stream (64 KiB buffers, each allocated,
 * copied into the segments, collected), and ~20 page faults instead of 1k–6k (2026-12-04).
 *
 * When the sink has no room (every segment still in use), the socket is paused and the next
 * read after it resumes lands in the scratch buffer and is copied in.
 */
class SocketReads {
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  /** The memory the pending read fills: what nextBuffer last handed to the socket. */
  private target: Uint8Array = this.scratch;
  private into: Into | null = null;
  socket: net.Socket | null = null;

  /** onread.buffer: called after every read (and once at the start) for the memory of the next one. */
  readonly nextBuffer = (): Uint8Array => {
    const into = this.into;
    const next = into?.next ?? null;
    if (into) into.next = null;
    this.target = next ?? (into && into.remaining > 0 ? this.scratch.subarray(0, Math.min(SCRATCH_BYTES, into.remaining)) : this.scratch);
    return this.target;
  };

  /** onread.callback: `nread` bytes landed in the target. False pauses the socket. */
  readonly onRead = (nread: number): boolean => {
    const bytes = this.target.subarray(0, nread);
    const into = this.into;
    if (!into) {
      this.socket?.emit('data', Buffer.from(bytes));
      return true;
    }
    try {
      into.remaining -= nread;
      // Copied out: a TLS connection may deliver more reads after a pause, into the same scratch buffer.
      if (this.target.buffer === this.scratch.buffer) into.parked.push(Buffer.from(bytes));
      else into.sink.filled(nread);
      return this.advance(into);
    } catch (err) {
      this.fail(into, err);
      return false;
    }
  };

  /**
   * Reads the rest of a body of `bodyLength` bytes into `sink`: first `leftovers` (bytes the
   * connection delivered before, copied in), then the `unread` bytes still due straight from
   * the socket. Resolves once all are in; rejects when the connection ends or fails before, or
   * the sink throws. The socket must be paused, and nothing else may read it meanwhile.
   */
  readInto(sink: ReadSink, leftovers: Buffer, unread: number, bodyLength: number): Promise<void> {
    const socket = this.socket!;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => this.into && this.fail(this.into, err);
      const onClose = () =>
        this.into &&
        this.fail(
          this.into,
          new Error(`the upstream connection closed after ${bodyLength - this.into.remaining} of ${bodyLength} body bytes`),
        );
      const into: Into = {
        sink,
        remaining: unread,
        next: null,
        parked: leftovers.length > 0 ? [leftovers] : [],
        settle: (err) => {
          if (this.into !== into) return;
          this.into = null;
          socket.off('error', onError);
          socket.off('close', onClose);
          if (err) reject(err);
          else resolve();
        },
      };
      this.into = into;
      socket.on('error', onError);
      socket.on('close', onClose);
      try {
        const readOn = this.advance(into);
        // A connection already gone can still have delivered every byte (they came with the head).
        if (this.into === into && into.remaining > 0 && socket.destroyed) onClose();
        else if (readOn) socket.resume();
      } catch (err) {
        this.fail(into, err);
      }
    });
  }

  /** Ends a read into a sink with `err` (the body was destroyed: an idle timeout, a failed fill). */
  abort(err: Error): void {
    if (this.into) this.fail(this.into, err);
  }

  private fail(into: Into, err: unknown): void {
    into.settle(err instanceof Error ? err : new Error(String(err)));
    this.socket?.destroy();
  }

  /**
   * After bytes landed: done, or memory for the next read (true: read on), or a pause until
   * the sink has room for parked bytes or the next read (false).
   */
  private advance(into: Into): boolean {
    this.unpark(into);
    if (into.parked.length === 0 && into.remaining === 0) {
      into.settle();
      return false;
    }
    if (into.parked.length === 0 && into.remaining > 0) {
      into.next = into.sink.room(into.remaining);
      if (into.next) return true;
    }
    into.sink.roomFreed().then(
      () => {
        if (this.into !== into) return;
        try {
          if (this.advance(into)) this.socket!.resume();
        } catch (err) {
          this.fail(into, err);
        }
      },
      (err: unknown) => this.into === into && this.fail(into, err),
    );
    this.socket!.pause();
    return false;
  }

  /** Copies parked bytes into the sink, oldest first, as far as it has room. */
  private unpark(into: Into): void {
    const parked = into.parked;
    while (parked.length > 0) {
      const rest = parked[0]!;
      const room = into.sink.room(rest.length);
      if (!room) return;
      room.set(rest.subarray(0, room.length));
      into.sink.filled(room.length);
      if (room.length === rest.length) parked.shift();
      else parked[0] = rest.subarray(room.length);
    }
  }
}

const connections = new WeakMap<net.Socket, SocketReads>();

/** The onread reads of a connection made by an agent of readIntoAgent(), if it is one. */
export function socketReads(socket: net.Socket): SocketReads | undefined {
  return connections.get(socket);
}

/**
 * Makes `agent` open its connections with onread (plain TCP and TLS alike), so that a raw body
 * can read them into a ReadSink (see SocketReads). The agent's own connection logic (TLS
 * sessions, options) is kept: only the onread option is added.
 */
export function readIntoAgent<A extends http.Agent>(agent: A): A {
  const agentWithCreate = agent as unknown as { createConnection: (options: object, callback?: unknown) => net.Socket };
  const create = agentWithCreate.createConnection.bind(agent);
  agentWithCreate.createConnection = (options, callback) => {
    const reads = new SocketReads();
    const socket = create({ ...options, onread: { buffer: reads.nextBuffer, callback: reads.onRead } }, callback);
    reads.socket = socket;
    connections.set(socket, reads);
    return socket;
  };
  return agent;
}
