/**
 * Messages between the worker processes of one `berth serve` (server.workers > 1, see
 * docs/deploy.md › Workers). A worker publishes what its siblings must apply to their own
 * memory at once (a failed login for the throttle, a cache to re-check); the cluster's
 * primary relays it to every other worker. Best effort and in-memory only: whatever must be
 * exact lives in the metadata database, as it must across replicas.
 *
 * In a single process (and in tests running several servers in one process) nothing is
 * installed: publishing does nothing and subscribers are never called.
 */
export interface PeerBus {
  /** Sends `payload` (JSON-serialisable) to the subscribers of `topic` in every other worker. */
  publish(topic: string, payload: unknown): void;
  /** Calls `handler` with what other workers publish on `topic`. */
  subscribe(topic: string, handler: (payload: unknown) => void): void;
}

const NO_PEERS: PeerBus = { publish: () => undefined, subscribe: () => undefined };

let installed: PeerBus = NO_PEERS;

/** The process's bus: the cluster's when this is a worker of one, else one that goes nowhere. */
export function peers(): PeerBus {
  return installed;
}

/** Installed once by a cluster worker (src/cluster.ts) before it builds its server. */
export function installPeers(bus: PeerBus): void {
  installed = bus;
}
