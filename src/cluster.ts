import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from 'pino';
import { installPeers, type PeerBus } from './core/peers.js';

/**
 * `berth serve` with several worker processes (server.workers, docs/deploy.md › Workers).
 *
 * The primary process serves nothing itself and loads none of the server: it forks the
 * workers (node:cluster; they share the listening socket, the primary hands each new
 * connection to the next worker), restarts one that dies (with a backoff), relays what
 * workers tell each other (src/core/peers.ts), sums their metrics for /metrics, and on
 * SIGTERM/SIGINT lets each finish its requests before it exits.
 *
 * The workers are replicas of one another: everything that must be shared lives in the
 * metadata database and the blob store, exactly as across replicas. Worker 0 starts first,
 * alone: it migrates the database and makes what a first start makes (signing key, admin
 * user); the others start once it listens. Worker 0 also runs the background jobs (a restarted
 * worker 0 takes them up again); the others run only the jobs that handle their own memory.
 */

/** The variable that tells a worker its place: "<index>/<count>". */
const WORKER_VARIABLE = 'BERTH_WORKER';

/** What the primary and the workers send each other over the cluster's IPC channel. */
type Message =
  | { berth: 'listening'; url: string }
  | { berth: 'publish'; topic: string; payload: unknown }
  | { berth: 'peer'; topic: string; payload: unknown }
  | { berth: 'metrics'; id: number }
  | { berth: 'metrics-result'; id: number; contentType?: string; body?: string; error?: string };

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as { berth?: unknown }).berth === 'string';
}

/** How many workers `berth serve` runs: the --workers flag, else server.workers (`auto`: one per core). */
export function workerCount(configured: number | 'auto', flag?: number): number {
  const wanted = flag ?? configured;
  return wanted === 'auto' ? os.availableParallelism() : wanted;
}

/** This process's place in a cluster, or null when it is not a worker of one. */
export function workerPlace(): { index: number; count: number } | null {
  if (!cluster.isWorker) return null;
  const m = /^(\d+)\/(\d+)$/.exec(process.env[WORKER_VARIABLE] ?? '');
  return m ? { index: Number(m[1]), count: Number(m[2]) } : null;
}

/** A restarted worker waits this long, doubling with each failure in a row (at most RESTART_MAX_MS). */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that served this long before it died starts its backoff over. */
const HEALTHY_AFTER_MS = 60_000;

/**
 * Runs the primary: forks `count` workers and supervises them until SIGTERM/SIGINT, when
 * every worker drains (finishes its requests, flushes its pull counts) and exits. Resolves
 * with the exit code once all have.
 */
export async function runPrimary(count: number, logger: Logger): Promise<number> {
  const workers = new Map<number, { worker: Worker; startedAt: number; failures: number }>();
  let stopping = false;
  let aggregator: { clusterMetrics(): Promise<string>; contentType: string } | null = null;
  const listening = new Map<number, (url: string) => void>();

  const fork = (index: number, failures = 0): Worker => {
    const worker = cluster.fork({ [WORKER_VARIABLE]: `${index}/${count}` });
    workers.set(index, { worker, startedAt: Date.now(), failures });
    worker.on('message', (message: unknown) => void onMessage(index, worker, message));
    worker.on('exit', (code, signal) => onExit(index, worker, code, signal));
    return worker;
  };

  const onMessage = async (index: number, from: Worker, message: unknown): Promise<void> => {
    if (!isMessage(message)) return;
    switch (message.berth) {
      case 'listening':
        listening.get(index)?.(message.url);
        return;
      case 'publish':
        for (const { worker } of workers.values()) {
          if (worker !== from && worker.isConnected())
            worker.send({ berth: 'peer', topic: message.topic, payload: message.payload } satisfies Message);
        }
        return;
      case 'metrics': {
        let reply: Message;
        try {
          if (!aggregator) {
            // Loaded at the first scrape only: the primary stays small when nobody scrapes.
            const { AggregatorRegistry } = await import('prom-client');
            aggregator = new AggregatorRegistry();
          }
          reply = { berth: 'metrics-result', id: message.id, contentType: aggregator.contentType, body: await aggregator.clusterMetrics() };
        } catch (err) {
          reply = { berth: 'metrics-result', id: message.id, error: (err as Error).message };
        }
        if (from.isConnected()) from.send(reply);
        return;
      }
      default:
        return;
    }
  };

  const onExit = (index: number, worker: Worker, code: number | null, signal: string | null): void => {
    const entry = workers.get(index);
    if (entry?.worker !== worker) return;
    if (stopping) {
      workers.delete(index);
      return;
    }
    const lived = Date.now() - entry.startedAt;
    const failures = lived >= HEALTHY_AFTER_MS ? 1 : entry.failures + 1;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (failures - 1));
    logger.error({ worker: index, pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker exited; restarting it');
    setTimeout(() => {
      if (stopping) return;
      const restarted = fork(index, failures);
      listening.set(index, () => {
        listening.delete(index);
        logger.info({ worker: index, pid: restarted.process.pid }, 'worker restarted');
      });
    }, delayMs).unref();
  };

  /** Forks worker `index` and waits until it listens; rejects with its exit code if it dies first. */
  const start = (index: number): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const worker = fork(index);
      const early = (code: number | null) =>
        reject(Object.assign(new Error(`worker ${index} exited with ${code ?? 'a signal'} before listening`), { exitCode: code ?? 1 }));
      worker.once('exit', early);
      listening.set(index, (url) => {
        listening.delete(index);
        worker.off('exit', early);
        resolve(url);
      });
    });

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: workers.size }, 'shutting down: every worker finishes its requests');
    const exits = [...workers.values()].map(
      ({ worker }) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', () => resolve());
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  };

  const stopped = new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal).then(resolve));
  });
  // SIGHUP re-reads the TLS certificate and key: in every worker.
  process.on('SIGHUP', () => {
    for (const { worker } of workers.values()) worker.process.kill('SIGHUP');
  });

  try {
    // Worker 0 alone first: it migrates the database and makes what a first start makes.
    const url = await start(0);
    await Promise.all(Array.from({ length: count - 1 }, (_, i) => start(i + 1)));
    logger.info({ url, workers: count, pid: process.pid }, 'berth is listening');
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'a worker could not start; stopping');
    await stop('startup failure');
    return (err as { exitCode?: number }).exitCode ?? 1;
  }
  await stopped;
  logger.info('every worker has stopped');
  return 0;
}

/** What a worker gets from its cluster: its place, the cluster's metrics, and a way to say it listens. */
export interface ClusterMember {
  index: number;
  count: number;
  /** Whether this worker runs the background jobs (worker 0). */
  jobs: boolean;
  /** Every worker's metrics, summed (asked of the primary). */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Tells the primary this worker listens at `url`. */
  listening(url: string): void;
}

/** How long a worker waits for the primary's metrics answer (prom-client's own limit is 5 s). */
const SCRAPE_TIMEOUT_MS = 10_000;

/**
 * Joins the cluster this worker was forked by: installs the peer bus (src/core/peers.ts) on
 * the IPC channel, before anything subscribes to it. Null outside a cluster worker.
 */
export function joinCluster(): ClusterMember | null {
  const place = workerPlace();
  if (!place || !process.send) return null;
  const send = (message: Message) => {
    if (process.connected) process.send!(message);
  };
  const handlers = new Map<string, ((payload: unknown) => void)[]>();
  const scrapes = new Map<number, { resolve: (r: { contentType: string; body: string }) => void; reject: (err: Error) => void }>();
  let nextScrape = 0;
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.berth === 'peer') {
      for (const handler of handlers.get(message.topic) ?? []) handler(message.payload);
    } else if (message.berth === 'metrics-result') {
      const pending = scrapes.get(message.id);
      scrapes.delete(message.id);
      if (message.error !== undefined || message.body === undefined)
        pending?.reject(new Error(`cluster metrics: ${message.error ?? 'no answer'}`));
      else pending?.resolve({ contentType: message.contentType ?? 'text/plain; version=0.0.4; charset=utf-8', body: message.body });
    }
  });
  const bus: PeerBus = {
    publish: (topic, payload) => send({ berth: 'publish', topic, payload }),
    subscribe: (topic, handler) => handlers.set(topic, [...(handlers.get(topic) ?? []), handler]),
  };
  installPeers(bus);
  return {
    ...place,
    jobs: place.index === 0,
    scrape: () =>
      new Promise((resolve, reject) => {
        const id = nextScrape++;
        const timer = setTimeout(() => {
          scrapes.delete(id);
          reject(new Error('cluster metrics: the primary did not answer'));
        }, SCRAPE_TIMEOUT_MS);
        scrapes.set(id, {
          resolve: (r) => (clearTimeout(timer), resolve(r)),
          reject: (err) => (clearTimeout(timer), reject(err)),
        });
        send({ berth: 'metrics', id });
      }),
    listening: (url) => send({ berth: 'listening', url }),
  };
}
