import { randomUUID } from 'node:crypto';
import os from 'node:os';

/**
 * Leases: one row per job name in the metadata DB (`leases(name, holder, expires_at)`),
 * so a job runs in one process at a time even with several replicas or a `berth gc`
 * next to the server. A holder keeps renewing its lease while it works; a crashed
 * holder's lease simply expires.
 */
export interface LeaseStore {
  /** Takes the lease if it is free or expired at `now` (conditional insert/update). True when taken. */
  tryAcquire(name: string, holder: string, now: number, expiresAt: number): Promise<boolean>;
  /** Extends a lease this holder still holds. False when it was lost (expired and taken). */
  renew(name: string, holder: string, expiresAt: number): Promise<boolean>;
  /** Gives the lease up if this holder still holds it. */
  release(name: string, holder: string): Promise<void>;
  /** Current holder of an unexpired lease, or null. */
  holder(name: string, now: number): Promise<string | null>;
}

export interface HeldLease {
  holder: string;
  /** Aborted when the lease could not be renewed: stop working as soon as possible. */
  signal: AbortSignal;
}

export type LeaseOutcome<T> = { acquired: true; value: T } | { acquired: false; heldBy: string | null };

export interface LeaseOptions {
  /** How long the lease lasts without renewal. Renewed every third of it. */
  ttlMs?: number;
  /** Called when a renewal fails (the work is aborted through the signal). */
  onLost?: (err?: unknown) => void;
}

const DEFAULT_TTL_MS = 60_000;

/** A lease another process holds past the caller's patience: an operator's fact ("try again"), not a crash. */
export class LeaseBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseBusyError';
  }
}

/** A holder id that tells an operator which process holds a lease. */
export function newHolderId(): string {
  return `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * Runs `work` while holding the lease `name`, renewing it in the background and releasing
 * it at the end. Does not run `work` (and says who holds it) when the lease is taken.
 */
export async function withLease<T>(
  store: LeaseStore,
  name: string,
  work: (lease: HeldLease) => Promise<T>,
  options: LeaseOptions = {},
): Promise<LeaseOutcome<T>> {
  const ttl = options.ttlMs ?? DEFAULT_TTL_MS;
  const holder = newHolderId();
  const now = Date.now();
  if (!(await store.tryAcquire(name, holder, now, now + ttl))) {
    return { acquired: false, heldBy: await store.holder(name, Date.now()) };
  }
  const controller = new AbortController();
  const lost = (err?: unknown) => {
    if (controller.signal.aborted) return;
    controller.abort(new Error(`lease ${name} lost`));
    options.onLost?.(err);
  };
  const renewal = setInterval(
    () => {
      store.renew(name, holder, Date.now() + ttl).then((held) => held || lost(), lost);
    },
    Math.max(10, Math.floor(ttl / 3)),
  );
  renewal.unref();
  try {
    return { acquired: true, value: await work({ holder, signal: controller.signal }) };
  } finally {
    clearInterval(renewal);
    await store.release(name, holder).catch(() => undefined);
  }
}
