import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuthStore, ChangeActor } from './ports.js';
import { validateUsername } from './secrets.js';

/**
 * Users from an Apache htpasswd file (Distribution's `auth: htpasswd`). The file holds names
 * and bcrypt hashes; each of its users also gets a row in the users table carrying this
 * marker instead of a hash, so memberships, refresh tokens and the admin flag (which the
 * schema ties to users rows) work as for any user. The marker is no bcrypt hash: no password
 * ever matches it, and the password always comes from the file.
 */
export const HTPASSWD_MARKER = '!htpasswd';

/** The actor of the users rows created for htpasswd users (audit log and events). */
export const HTPASSWD_ACTOR: ChangeActor = { name: 'htpasswd', ip: null, audit: { detail: { source: 'htpasswd' } } };

export function isHtpasswdAccount(passwordHash: string): boolean {
  return passwordHash === HTPASSWD_MARKER;
}

/** bcrypt as written by `htpasswd -B` ($2y$) and other tools ($2a$, $2b$): cost 04-31, 22 + 31 characters. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** A line left out of the user set, and why (never the hash itself). */
export interface SkippedEntry {
  line: number;
  user: string;
  reason: string;
}

export interface ParsedHtpasswd {
  /** name → bcrypt hash */
  users: Map<string, string>;
  /** name → line number, for messages */
  lines: Map<string, number>;
  skipped: SkippedEntry[];
}

/** The file is not an htpasswd file (a line without a name, a name given twice): nothing in it is trusted. */
export class HtpasswdSyntaxError extends Error {}

/**
 * Parses htpasswd text. Blank lines and `#` comments are ignored. Entries with another hash
 * format or a name Berth cannot use are skipped (and reported); structural damage throws.
 */
export function parseHtpasswd(text: string): ParsedHtpasswd {
  const parsed: ParsedHtpasswd = { users: new Map(), lines: new Map(), skipped: [] };
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const colon = entry.indexOf(':');
    if (colon <= 0) throw new HtpasswdSyntaxError(`line ${line}: expected "user:hash"`);
    const user = entry.slice(0, colon);
    const hash = entry.slice(colon + 1).trim();
    if (parsed.lines.has(user))
      throw new HtpasswdSyntaxError(`line ${line}: user ${user} already defined at line ${parsed.lines.get(user)}`);
    parsed.lines.set(user, line);
    const reason = rejection(user, hash);
    if (reason) parsed.skipped.push({ line, user, reason });
    else parsed.users.set(user, hash);
  });
  return parsed;
}

function rejection(user: string, hash: string): string | null {
  try {
    validateUsername(user);
  } catch {
    return 'not a valid Berth user name (1-64 characters of [a-z0-9._-], starting and ending with a letter or digit)';
  }
  if (BCRYPT.test(hash)) return null;
  return `${hashKind(hash)}; only bcrypt entries ($2y$, $2a$, $2b$, as written by htpasswd -B) are accepted`;
}

function hashKind(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'MD5 ($apr1$) hash';
  if (hash.startsWith('{SHA}')) return 'SHA1 ({SHA}) hash';
  if (/^\$[56]\$/.test(hash)) return 'SHA-crypt hash';
  if (hash.startsWith('$2')) return 'malformed bcrypt hash';
  return 'crypt or plain-text password';
}

/** The htpasswd users currently in force; replaced as a whole on every successful load. */
export class HtpasswdUsers {
  private users: ReadonlyMap<string, string> = new Map();

  hashOf(name: string): string | undefined {
    return this.users.get(name);
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  get size(): number {
    return this.users.size;
  }

  replace(users: ReadonlyMap<string, string>): void {
    this.users = users;
  }
}

export interface WatchOptions {
  /** Safety net: re-read this often even without a directory event (NFS, Kubernetes symlink swaps). */
  pollMs: number;
  /** Quiet time after the last directory event before re-reading (editors write in bursts). */
  debounceMs: number;
}

const DEFAULT_WATCH: WatchOptions = { pollMs: 2_000, debounceMs: 100 };

/**
 * Loads the file into an HtpasswdUsers and keeps it current. Changes are noticed by watching
 * the directory (so a file replaced by rename, as editors and `mv` do, is seen) and by
 * re-reading every few seconds; unchanged content is not re-parsed. A reload that fails
 * (unreadable, malformed) logs the error and keeps the previous users.
 */
export class HtpasswdWatcher {
  private readonly file: string;
  private fingerprint = '';
  private watcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  /** Reloads run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    file: string,
    private readonly users: HtpasswdUsers,
    private readonly logger: Logger,
    private readonly options: WatchOptions = DEFAULT_WATCH,
  ) {
    this.file = path.resolve(file);
  }

  /** First load, at startup: an unreadable or malformed file is an error the caller reports. */
  async load(): Promise<ParsedHtpasswd> {
    const text = await readFile(this.file, 'utf8');
    return this.apply(text);
  }

  /** Starts watching; `onChange` runs after each load that changed the users (errors are logged). */
  watch(onChange: (parsed: ParsedHtpasswd) => Promise<void>): void {
    const trigger = () => void this.enqueue(onChange);
    try {
      this.watcher = watch(path.dirname(this.file), () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(trigger, this.options.debounceMs).unref();
      });
      this.watcher.on('error', (err) =>
        this.logger.warn({ err, path: this.file }, 'htpasswd: watching the directory failed; still re-reading periodically'),
      );
      this.watcher.unref();
    } catch (err) {
      this.logger.warn({ err, path: this.file }, 'htpasswd: cannot watch the directory; re-reading periodically');
    }
    this.poller = setInterval(trigger, this.options.pollMs).unref();
  }

  /** Re-reads the file now (also what the watchers call). True when the users changed. */
  reload(onChange?: (parsed: ParsedHtpasswd) => Promise<void>): Promise<boolean> {
    return this.enqueue(onChange);
  }

  close(): void {
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher = this.poller = this.debounce = null;
  }

  private enqueue(onChange?: (parsed: ParsedHtpasswd) => Promise<void>): Promise<boolean> {
    const run = this.queue.then(() => this.reloadOnce(onChange));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadOnce(onChange?: (parsed: ParsedHtpasswd) => Promise<void>): Promise<boolean> {
    let parsed: ParsedHtpasswd | null;
    try {
      let text = await readFile(this.file, 'utf8');
      // writeFile truncates, then writes: a change event can land in between. An empty file is
      // believed only if it is still empty a moment later (emptying it does revoke everyone).
      if (text === '') {
        await new Promise((resolve) => setTimeout(resolve, EMPTY_FILE_RECHECK_MS));
        text = await readFile(this.file, 'utf8');
      }
      if (fingerprintOf(text) === this.fingerprint) return false;
      parsed = this.apply(text);
    } catch (err) {
      this.logger.error(
        { err: describe(err), path: this.file, users: this.users.size },
        `htpasswd reload failed, keeping the previous ${this.users.size} users: ${describe(err)}`,
      );
      return false;
    }
    try {
      await onChange?.(parsed);
    } catch (err) {
      this.logger.error({ err, path: this.file }, 'htpasswd: registering the reloaded users failed');
    }
    return true;
  }

  /** Parses, then swaps the whole set in one assignment: a request sees the old users or the new ones, never a mix. */
  private apply(text: string): ParsedHtpasswd {
    const parsed = parseHtpasswd(text);
    for (const s of parsed.skipped) {
      this.logger.warn({ path: this.file, line: s.line, user: s.user }, `htpasswd: skipped user ${s.user} at line ${s.line}: ${s.reason}`);
    }
    this.users.replace(parsed.users);
    this.fingerprint = fingerprintOf(text);
    this.logger.info(
      { path: this.file, users: parsed.users.size, skipped: parsed.skipped.length },
      `htpasswd: loaded ${parsed.users.size} users`,
    );
    return parsed;
  }
}

const EMPTY_FILE_RECHECK_MS = 250;

function fingerprintOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Gives every htpasswd user a users row (see HTPASSWD_MARKER) and warns about names a Berth
 * user already holds: that user keeps its own password, and the file's entry is ignored.
 * Rows of users later removed from the file stay (with their memberships) but match nothing.
 */
export async function registerHtpasswdUsers(store: AuthStore, parsed: ParsedHtpasswd, logger: Logger): Promise<void> {
  const existing = new Map((await store.listUsers()).map((u) => [u.username, u]));
  for (const name of parsed.users.keys()) {
    const user = existing.get(name);
    if (!user) {
      // Audited (and its user.created event appended) in the same transaction as the row.
      await store.createUser({ username: name, passwordHash: HTPASSWD_MARKER, admin: false }, HTPASSWD_ACTOR);
    } else if (!isHtpasswdAccount(user.passwordHash)) {
      logger.warn(
        { user: name, line: parsed.lines.get(name) },
        `htpasswd: user ${name} (line ${parsed.lines.get(name)}) is ignored: a Berth user of that name exists and keeps its own password`,
      );
    }
  }
}
