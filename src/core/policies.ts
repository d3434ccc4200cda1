import { RegistryError, type ErrorCode } from './errors.js';
import type { ChangeReason } from './events.js';
import type { ManifestReference } from './manifest.js';
import type { MetadataTx } from './ports.js';

/**
 * Policy hooks: named decision points in core that policies (read-only mode today; quotas,
 * immutable tags, signature and vulnerability policy later) register on. Write hooks run
 * inside the transaction of the change they judge, so a decision and the write it allows
 * commit together; `manifest.serve` runs before a manifest is served. A policy denies by
 * throwing (see `deny`); clients see its message in the spec's error body.
 */
export interface HookContexts {
  /** A blob upload session is about to start (refusing here spares the client the transfer). */
  'upload.start': { repository: string };
  /**
   * A blob is about to be recorded and linked. `phase: 'check'` runs before the bytes move to
   * their content address (to refuse early), `'commit'` in the transaction that records them.
   */
  'blob.commit': { repository: string; digest: string; size: number; phase: 'check' | 'commit'; lastAppendAt: number };
  'blob.mount': { repository: string; digest: string; from: string };
  'blob.delete': { repository: string; digest: string };
  'manifest.put': {
    repository: string;
    digest: string;
    mediaType: string;
    artifactType: string | null;
    subject: string | null;
    size: number;
    tags: string[];
    references: ManifestReference[];
  };
  /** Each tag a manifest PUT creates or moves (`previous` null: the tag is new). */
  'tag.put': { repository: string; tag: string; digest: string; previous: string | null };
  'manifest.delete': { repository: string; digest: string };
  'tag.delete': { repository: string; tag: string; digest: string };
  'manifest.serve': { repository: string; digest: string; mediaType: string; reference: string };
}

export type HookName = keyof HookContexts;

/** Who is asking (for messages and audit); null when unknown (auth: none, system jobs). */
export interface HookCaller {
  actor: string | null;
  /** The caller's client address, where the hook may record it (write hooks); absent when unknown. */
  ip?: string | null;
  /**
   * Set when content changes on a client's behalf (a restore, a retention run, a pull-through
   * cache fill: `proxy-cache`); absent for a client's own push or delete.
   */
  reason?: ChangeReason;
}

export type Hook<H extends HookName> = (context: HookContexts[H] & HookCaller, tx: MetadataTx | null) => Promise<void> | void;

export interface Policy {
  /** Shown in denials, e.g. "read-only". */
  name: string;
  hooks: { [H in HookName]?: Hook<H> };
  /** Told what content left repositories, in the transaction that removed it (see RemovalListener). */
  removed?: RemovalListener;
}

/** Content that left a repository: a blob link or a stored manifest. */
export interface ContentRemoval {
  repository: string;
  digest: string;
}

/**
 * Runs in the transaction of a removal — a /v2 blob or manifest delete (core) or a deletion by
 * the garbage collector (src/gc, which is given the hooks by the composition root) — after the
 * rows are gone. It keeps a policy's own records in step (quota usage); it judges nothing, so
 * it must not refuse: a throw fails (rolls back) the removal.
 */
export type RemovalListener = (removed: ContentRemoval[], tx: MetadataTx) => Promise<void>;

/** A policy's refusal: a spec error whose message names the policy. */
export function deny(policy: string, code: ErrorCode, message: string, detail?: Record<string, unknown>): RegistryError {
  return new RegistryError(code, `${message} (policy: ${policy})`, { policy, ...detail });
}

export class PolicyHooks {
  private readonly byHook = new Map<HookName, { policy: string; hook: Hook<HookName> }[]>();
  private readonly removalListeners: RemovalListener[] = [];

  register(policy: Policy): this {
    for (const [name, hook] of Object.entries(policy.hooks) as [HookName, Hook<HookName>][]) {
      const list = this.byHook.get(name) ?? [];
      list.push({ policy: policy.name, hook });
      this.byHook.set(name, list);
    }
    if (policy.removed) this.removalListeners.push(policy.removed);
    return this;
  }

  /** Tells the policies that listen for removals what left which repository (in the removal's transaction). */
  async removed(removed: ContentRemoval[], tx: MetadataTx): Promise<void> {
    if (removed.length === 0) return;
    for (const listener of this.removalListeners) await listener(removed, tx);
  }

  /** True when some policy listens on `hook` (lets hot paths skip building a context). */
  has(hook: HookName): boolean {
    return this.byHook.has(hook);
  }

  /** Runs every policy on `hook` in registration order; the first refusal stops the operation. */
  async check<H extends HookName>(hook: H, context: HookContexts[H] & HookCaller, tx: MetadataTx | null): Promise<void> {
    const hooks = this.byHook.get(hook);
    if (!hooks) return;
    for (const { hook: run } of hooks) await (run as Hook<H>)(context, tx);
  }

  /** Names of the registered policies per hook (for start-up logs and docs). */
  describe(): Record<string, string[]> {
    return Object.fromEntries([...this.byHook].map(([hook, list]) => [hook, list.map((h) => h.policy)]));
  }
}
