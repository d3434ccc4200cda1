import { z } from 'zod';
import { authConfigSchema } from './auth.js';
import { decodeSecretsKey } from '../core/secrets.js';
import { isCron } from './cron.js';
import { auditConfigSchema } from './audit.js';

/**
 * Berth's configuration. Keys mirror CNCF Distribution's config.yml where the concept
 * is the same (http.addr, http.tls.certificate, storage.delete.enabled, log.level …)
 * so an existing config can be carried over. Every key can be overridden by an
 * environment variable: `http.addr` → `BERTH_HTTP_ADDR`.
 */
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration like 30s, 15m, 24h')]);

const MiB = 1024 * 1024;

/** One path or a list of them (a single value is what an environment variable can give). */
const pathList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => [v].flat());

/** Keys mirror Distribution's s3 storage driver. Secrets may come from BERTH_STORAGE_S3_* instead. */
const s3StorageSchema = z
  .object({
    bucket: z.coerce.string().min(1),
    region: z.string().min(1).default('us-east-1'),
    /** Endpoint URL of an S3-compatible server (MinIO, Ceph…); AWS's own when omitted. */
    regionendpoint: z.string().url().optional(),
    /** Address buckets as <endpoint>/<bucket> rather than <bucket>.<endpoint> (needed by most non-AWS servers). */
    forcepathstyle: z.boolean().default(false),
    /** Static credentials; without them the AWS SDK's default chain applies (env, profile, instance role). */
    accesskey: z.coerce.string().min(1).optional(),
    secretkey: z.coerce.string().min(1).optional(),
    /** Key prefix under which Berth stores everything. */
    rootdirectory: z.string().default(''),
    /** Upload segment size: bytes buffered per upload request and the multipart part size (S3's minimum is 5 MiB). */
    chunksize: z
      .number()
      .int()
      .min(5 * MiB)
      .max(5 * 1024 * MiB)
      .default(10 * MiB),
    /** Answer blob GETs with a redirect to a presigned S3 URL instead of streaming through Berth. */
    redirect: z.boolean().default(false),
  })
  .strict()
  .refine((s3) => (s3.accesskey === undefined) === (s3.secretkey === undefined), {
    message: 'accesskey and secretkey must be given together',
    path: ['secretkey'],
  });

/** One webhook endpoint: Distribution's notifications.endpoints[] keys, plus Berth's format, secret, events and maxattempts. */
const webhookEndpointSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][\w.-]{0,99}$/, 'letters, digits, ".", "_" and "-", at most 100'),
    url: z.string().url(),
    /** Sent with every request; Distribution writes each value as a list. */
    headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
    timeout: duration.default('5s'),
    /** Failures retried after `backoff` before the delay starts doubling (Distribution's threshold). */
    threshold: z.number().int().positive().default(1),
    /** Delay before the first retry; it doubles with each failure past `threshold`, up to notifications.maxbackoff. */
    backoff: duration.default('1s'),
    ignoredmediatypes: z.array(z.string()).default([]),
    ignore: z
      .object({ mediatypes: z.array(z.string()).default([]), actions: z.array(z.string()).default([]) })
      .strict()
      .default({ mediatypes: [], actions: [] }),
    disabled: z.boolean().default(false),
    /** distribution (…events.v1+json, as Distribution 2.8), distribution-v2 (3.x), harbor (Default JSON) or cloudevents (1.0 structured). */
    format: z.enum(['distribution', 'distribution-v2', 'harbor', 'cloudevents']).default('distribution'),
    /** Key of the X-Berth-Signature: sha256=<HMAC of the body> header. */
    secret: z.string().min(1).optional(),
    /** Event kinds to send (artifact.pushed, …); empty sends every kind the format has. */
    events: z.array(z.string()).default([]),
    /** Attempts before a delivery is given up (default notifications.maxattempts). */
    maxattempts: z.number().int().positive().optional(),
  })
  .strict();

const notificationsSchema = z
  .object({
    endpoints: z.array(webhookEndpointSchema).default([]),
    /** Distribution's notifications.events block, accepted so its configuration carries over. */
    events: z
      .object({ includereferences: z.boolean().default(false) })
      .strict()
      .optional(),
    /** How often each process looks for due deliveries. */
    interval: duration.default('1s'),
    /** Endpoints one process delivers to at once (each in order, one request at a time). */
    concurrency: z.number().int().positive().default(8),
    /** Attempts before a delivery is given up (it stays in the log and can be redelivered). */
    maxattempts: z.number().int().positive().default(10),
    /** Longest delay between two attempts. */
    maxbackoff: duration.default('5m'),
    /** Request timeout and first retry delay of project webhook policies (config endpoints set their own). */
    timeout: duration.default('5s'),
    backoff: duration.default('1s'),
    /** Delivered and given-up deliveries stay in the log this long (pending ones until they finish). */
    retention: duration.default('7d'),
  })
  .strict()
  .default({
    endpoints: [],
    interval: '1s',
    concurrency: 8,
    maxattempts: 10,
    maxbackoff: '5m',
    timeout: '5s',
    backoff: '1s',
    retention: '7d',
  });

export const configSchema = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    http: z
      .object({
        addr: z
          .string()
          .regex(/^(\[[^\]]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:5000')
          .default('0.0.0.0:5000'),
        /** Public base URL, used for absolute Location headers when set. */
        host: z.string().url().optional(),
        tls: z
          .object({
            certificate: z.string().min(1),
            key: z.string().min(1),
            /**
             * Client-certificate authentication (Distribution's name): PEM files of the CAs client
             * certificates must chain to. Clients without a certificate still use passwords and
             * tokens; a presented certificate that fails verification is refused (401).
             * docs/security.md › mTLS and SPIFFE workload identity.
             */
            clientcas: pathList.optional(),
            /** PEM file(s) of CRLs, one for every CA in the clients' chains; re-read when they change. Needs clientcas. */
            clientcrl: pathList.optional(),
            /** SPIFFE X.509-SVIDs: the trust domains whose IDs authenticate (as workloads whose roles come from bindings). */
            spiffe: z
              .object({
                trustdomains: z
                  .array(z.string().regex(/^[a-z0-9._-]{1,255}$/, 'a SPIFFE trust domain: lowercase letters, digits, ".", "_" and "-"'))
                  .min(1),
              })
              .strict()
              .optional(),
            /** Client certificates without a SPIFFE ID: `ignore` (they authenticate nobody) or `user` (the subject CN names an existing Berth user). */
            clientcn: z.enum(['ignore', 'user']).default('ignore'),
          })
          .strict()
          .superRefine((tls, ctx) => {
            if (!tls.clientcas && (tls.clientcrl || tls.spiffe || tls.clientcn !== 'ignore')) {
              ctx.addIssue({
                code: 'custom',
                path: ['clientcas'],
                message: 'required by clientcrl, spiffe and clientcn: client certificates are verified against these CAs',
              });
            }
          })
          .optional(),
        /** Seconds to wait for a request's headers before closing the connection (slowloris guard). */
        headerstimeout: duration.default('30s'),
        /** Close a connection whose request body makes no progress for this long. */
        idletimeout: duration.default('2m'),
        /** Behind a TLS-terminating proxy: honour X-Forwarded-Proto/Host/For (token realm, audit IPs). */
        trustproxy: z.boolean().default(false),
      })
      .strict()
      .default({ addr: '0.0.0.0:5000', headerstimeout: '30s', idletimeout: '2m', trustproxy: false }),
    /**
     * The server's processes (docs/deploy.md › Workers). `workers`: how many worker processes
     * `berth serve` forks, each serving HTTP on the same port (node:cluster); `auto` (the
     * default) is one per core (os.availableParallelism()); 1 runs today's single process.
     */
    server: z
      .object({
        workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default('auto'),
      })
      .strict()
      .default({ workers: 'auto' }),
    data: z
      .object({ dir: z.string().min(1).default('./data') })
      .strict()
      .default({ dir: './data' }),
    /** The web UI (docs/api.md#web-ui-api): the SPA served at / and the browser sessions behind it. */
    ui: z
      .object({
        /** Serve the built SPA (dist/ui) at /. The /api/v1 session endpoints work either way. */
        enabled: z.boolean().default(true),
        /** Where the built SPA is (index.html and assets/); default: dist/ui of the installation. */
        root: z.string().min(1).optional(),
        /** Absolute lifetime of a browser session, from sign-in. */
        sessionttl: duration.default('12h'),
        /** A browser session unused for this long ends. */
        sessionidle: duration.default('2h'),
      })
      .strict()
      .default({ enabled: true, sessionttl: '12h', sessionidle: '2h' }),
    storage: z
      .object({
        filesystem: z
          .object({ rootdirectory: z.string().min(1).optional() })
          .strict()
          .optional(),
        /** Blobs in an S3 bucket instead of the filesystem: see docs/storage.md. */
        s3: s3StorageSchema.optional(),
        delete: z
          .object({ enabled: z.boolean().default(true) })
          .strict()
          .default({ enabled: true }),
        maintenance: z
          .object({
            uploadpurging: z
              .object({
                enabled: z.boolean().default(true),
                age: duration.default('24h'),
                interval: duration.default('1h'),
              })
              .strict()
              .default({ enabled: true, age: '24h', interval: '1h' }),
            /** Refuse every write (405 UNSUPPORTED) while pulls go on, as Distribution's read-only mode. */
            readonly: z
              .object({ enabled: z.boolean().default(false) })
              .strict()
              .default({ enabled: false }),
          })
          .strict()
          .default({ uploadpurging: { enabled: true, age: '24h', interval: '1h' }, readonly: { enabled: false } }),
      })
      .strict()
      .default({
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: true, age: '24h', interval: '1h' }, readonly: { enabled: false } },
      }),
    metadata: z
      .object({
        driver: z.enum(['sqlite', 'postgres', 'mysql']).default('sqlite'),
        /** SQLite file path (default <data.dir>/berth.db). */
        path: z.string().optional(),
        /** PostgreSQL or MySQL/MariaDB connection URL. */
        url: z.string().optional(),
        /** PostgreSQL connection pool (per process). */
        pool: z
          .object({
            /** Most connections this process opens at once. */
            max: z.number().int().positive().default(10),
            /** Give up (503) when no connection is available within this time. */
            connecttimeout: duration.default('5s'),
            /** Close a pooled connection unused for this long. */
            idletimeout: duration.default('30s'),
          })
          .strict()
          .default({ max: 10, connecttimeout: '5s', idletimeout: '30s' }),
        /** PostgreSQL aborts any statement running longer than this (0 = no limit). */
        statementtimeout: duration.default('30s'),
      })
      .strict()
      .default({ driver: 'sqlite', pool: { max: 10, connecttimeout: '5s', idletimeout: '30s' }, statementtimeout: '30s' }),
    limits: z
      .object({
        /** Largest manifest accepted, in bytes (Distribution's default is 4 MiB). */
        manifestsize: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024),
        /** Largest blob accepted, in bytes; 0 means unlimited. */
        blobsize: z.number().int().nonnegative().default(0),
        /** Upload sessions in progress at once, across all clients. */
        uploads: z.number().int().positive().default(1000),
        /** Upload transfers one client (remote address) may have in flight at once; 0 means no per-client limit. */
        uploadsperclient: z.number().int().nonnegative().default(100),
        /** Largest `n` honoured by tag and catalog listings. */
        pagesize: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({ manifestsize: 4 * 1024 * 1024, blobsize: 0, uploads: 1000, uploadsperclient: 100, pagesize: 10_000 }),
    /** Identity and access: see docs/security.md. */
    auth: authConfigSchema,
    /** Online garbage collection: see docs/gc.md. */
    gc: z
      .object({
        /** Run on `schedule` inside the server (every replica schedules; one collects at a time). */
        enabled: z.boolean().default(true),
        /** Cron expression (minute hour day-of-month month day-of-week). */
        schedule: z
          .string()
          .refine((expr) => isCron(expr), 'expected a cron expression like "0 * * * *"')
          .default('0 * * * *'),
        /** Nothing pushed, mounted or unreferenced more recently than this is collected. */
        graceperiod: duration.default('1h'),
        /** delete: untagged manifests are garbage unless an index or a live subject needs them. */
        untagged: z.enum(['delete', 'keep']).default('delete'),
        /** Review-queue rows read per batch. */
        batchsize: z.number().int().positive().default(100),
        /** A collector that stops renewing its lease (crashed) blocks others this long. */
        leasettl: duration.default('60s'),
      })
      .strict()
      .default({ enabled: true, schedule: '0 * * * *', graceperiod: '1h', untagged: 'delete', batchsize: 100, leasettl: '60s' }),
    /**
     * Encryption of secrets at rest (token signing keys): see docs/security.md#secrets-at-rest.
     * Without a key they are stored in plain text (in a 0600 database file).
     */
    secrets: z
      .object({
        /** 32 random bytes, base64 or hex (`openssl rand -base64 32`); better given as BERTH_SECRETS_KEY. */
        key: z
          .string()
          .optional()
          .superRefine((key, ctx) => {
            if (key === undefined) return;
            try {
              decodeSecretsKey(key);
            } catch (err) {
              ctx.addIssue({ code: 'custom', message: (err as Error).message });
            }
          }),
        /** A file holding the key (e.g. a mounted secret), instead of `key`. */
        keyfile: z.string().min(1).optional(),
        /**
         * Keys used before `key` (BERTH_SECRETS_PREVIOUSKEYS, comma-separated): values sealed with
         * them still open, and are sealed again with `key` at start. Drop them once every process has restarted.
         */
        previouskeys: z
          .union([z.string(), z.array(z.string())])
          .optional()
          .transform((keys) => (typeof keys === 'string' ? keys.split(',') : (keys ?? [])).map((k) => k.trim()).filter((k) => k !== ''))
          .superRefine((keys, ctx) => {
            keys.forEach((key, i) => {
              try {
                decodeSecretsKey(key);
              } catch (err) {
                ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
              }
            });
          }),
      })
      .strict()
      .refine((s) => s.key === undefined || s.keyfile === undefined, {
        message: 'give secrets.key or secrets.keyfile, not both',
        path: ['keyfile'],
      })
      .refine((s) => s.previouskeys.length === 0 || s.key !== undefined || s.keyfile !== undefined, {
        message: 'previous keys need the current one: set secrets.key or secrets.keyfile too',
        path: ['previouskeys'],
      })
      .default({ previouskeys: [] }),
    /** The domain-event outbox and its consumers: see docs/architecture.md. */
    events: z
      .object({
        /** How often one replica delivers new events to the consumers (GC's review queue, …). */
        interval: duration.default('1s'),
        /** Events every consumer has handled are deleted once this old. */
        retention: duration.default('24h'),
        /** How often each process writes the pull counts it gathered in memory. */
        pullflushinterval: duration.default('10s'),
      })
      .strict()
      .default({ interval: '1s', retention: '24h', pullflushinterval: '10s' }),
    /** Replication (docs/replication.md): how often the leased job looks for executions to run, and the upload chunk. */
    replication: z
      .object({
        interval: duration.default('2s'),
        /** PATCH size of a blob copy: a checkpoint is kept after each; an interruption re-sends at most one. */
        chunksize: z
          .number()
          .int()
          .min(65_536)
          .default(8 * 1024 * 1024),
        /** Tries per blob (each resumes from its checkpoint) and per artifact. */
        attempts: z.number().int().min(1).max(20).default(5),
        taskattempts: z.number().int().min(1).max(10).default(3),
        /** First backoff between tries, doubling. */
        backoff: duration.default('1s'),
        /** Finished executions (and their task results) are kept this long; the newest of each policy always. */
        retention: duration.default('30d'),
        /** The `replication` job's lease: a process killed mid-execution blocks the other replicas (and its own restart) this long. */
        leasettl: duration.default('60s'),
      })
      .strict()
      .default({
        interval: '2s',
        chunksize: 8 * 1024 * 1024,
        attempts: 5,
        taskattempts: 3,
        backoff: '1s',
        retention: '30d',
        leasettl: '60s',
      }),
    /** Tag history and rollback: see docs/policies.md. */
    tags: z
      .object({
        history: z
          .object({
            /** Tag changes are kept this long; a tag can be restored to any digest it pointed to within it. */
            retention: duration.default('14d'),
            /** GC keeps manifests a tag pointed to within `retention` (off: collected as soon as untagged). */
            protectgc: z.boolean().default(true),
          })
          .strict()
          .default({ retention: '14d', protectgc: true }),
      })
      .strict()
      .default({ history: { retention: '14d', protectgc: true } }),
    /** Webhooks: Distribution's notifications.endpoints plus Berth's delivery settings (docs/observability.md#webhooks). */
    notifications: notificationsSchema,
    /** Prometheus metrics: GET /metrics (docs/observability.md#metrics). */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        /**
         * A listener of its own for GET /metrics, open to whoever reaches it (as Distribution's
         * http.debug.addr; bind it to an internal address). When set, the main listener serves no /metrics.
         */
        addr: z
          .string()
          .regex(/^(\[[^\]]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:5001')
          .optional(),
        /** On the main listener: admin (a system admin's Basic credentials or API token; open with auth.mode none) or none. */
        auth: z.enum(['admin', 'none']).default('admin'),
        /** How long gauges computed by a database query (storage, projects, outbox, jobs) keep their value. */
        refresh: duration.default('30s'),
        /** Distinct project label values per series; further projects share the value _other. */
        projectlabels: z.number().int().positive().default(500),
        /** Bytes the storage may hold, exported as berth_storage_capacity_bytes for the usage alert (0: not exported). */
        storagecapacity: z.number().int().nonnegative().default(0),
      })
      .strict()
      .default({ enabled: true, auth: 'admin', refresh: '30s', projectlabels: 500, storagecapacity: 0 }),
    /** Audit export to SIEMs (src/audit, docs/observability.md#audit-export). */
    audit: auditConfigSchema,
    /**
     * Pull-through caching (docs/proxy-cache.md). `remoteurl` makes the whole registry a mirror of
     * one upstream, as Distribution's `proxy:` section does (pushes refused); cache projects are
     * bound to endpoints through the API instead. `ttl` (Distribution's expiry, default 168h) is
     * the default retention of a cache project: binding a project without a retention policy
     * gives it "keep what was pulled within ttl" (whole days, rounded up), run daily; 0 gives none.
     */
    proxy: z
      .object({
        remoteurl: z.string().url().optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        ttl: duration.default('168h'),
        /** A cached tag is revalidated upstream (one HEAD) only when last checked longer ago than this. */
        tagttl: duration.default('5m'),
        /** How long to wait for an upstream's answer before serving cached content or failing with 504. */
        upstreamtimeout: duration.default('30s'),
        /**
         * A cached tag the upstream answers 404 for on revalidation stays pullable (true), or is
         * deleted from the cache (false: the pull answers 404 MANIFEST_UNKNOWN naming the upstream).
         * A cache project's binding may override it (`keepDeletedTags`).
         */
        keepdeletedtags: z.boolean().default(true),
      })
      .strict()
      .default({ ttl: '168h', tagttl: '5m', upstreamtimeout: '30s', keepdeletedtags: true }),
    /** Storage quotas per project (limits are set through the API or `berth quota set`): docs/policies.md#storage-quotas. */
    quotas: z
      .object({
        /** A quota.warning event when a push takes a project's usage across this % of its limit. */
        warning: z.number().min(1).max(100).default(85),
      })
      .strict()
      .default({ warning: 85 }),
    /**
     * Vulnerability scanning: SBOM and scan on push, rescans after a database import
     * (docs/supply-chain.md#scan-and-sbom-on-push), and the scanner — the built-in matcher or a
     * Harbor Pluggable Scanner API v1.2 adapter (docs/supply-chain.md#harbor-scanner-adapters-trivy-clair).
     */
    scanning: z
      .object({
        /** How often one replica works the queue of pushed images waiting for an SBOM or a scan (docs/supply-chain.md#scan-and-sbom-on-push). */
        interval: duration.default('2s'),
        /** Images one replica reads (SBOM, scan) at once. */
        concurrency: z.number().int().positive().default(2),
        /** How often one replica looks for a database import that changed the database, to rescan. */
        rescaninterval: duration.default('1m'),
        /** Artifacts per rescan batch (progress is stored after each). */
        rescanbatch: z.number().int().positive().default(50),
        scanner: z
          .object({
            /** builtin: the offline OSV database; harbor: an existing adapter (Trivy, Clair…) at `url`. */
            kind: z.enum(['builtin', 'harbor']).default('builtin'),
            /** The adapter's base URL (its API is served under /api/v1). */
            url: z.string().url().optional(),
            /** The Authorization header value sent to the adapter (`Bearer …`, `Basic …`); masked by `berth config`, never logged. Or authorizationfile. */
            authorization: z.string().min(1).optional(),
            /** A file holding that value (one line, e.g. a mounted secret), instead of authorization. */
            authorizationfile: z.string().min(1).optional(),
            /** The URL the adapter pulls from Berth at (default: http.host, else the address Berth listens on). */
            registryurl: z.string().url().optional(),
            /** The longest one scan may take, adapter requests and polling included; after it the scan fails. */
            timeout: duration.default('5m'),
            /** Wait between report polls when the adapter does not say (Refresh-After). */
            pollinterval: duration.default('2s'),
          })
          .strict()
          .superRefine((s, ctx) => {
            if (s.kind === 'harbor' && !s.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when kind is harbor' });
            if (s.authorization !== undefined && s.authorizationfile !== undefined)
              ctx.addIssue({ code: 'custom', path: ['authorizationfile'], message: 'give authorization or authorizationfile, not both' });
          })
          .default({ kind: 'builtin', timeout: '5m', pollinterval: '2s' }),
      })
      .strict()
      .default({
        interval: '2s',
        concurrency: 2,
        rescaninterval: '1m',
        rescanbatch: 50,
        scanner: { kind: 'builtin', timeout: '5m', pollinterval: '2s' },
      }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if ((cfg.metadata.driver === 'postgres' || cfg.metadata.driver === 'mysql') && !cfg.metadata.url) {
      ctx.addIssue({ code: 'custom', path: ['metadata', 'url'], message: `required when metadata.driver is ${cfg.metadata.driver}` });
    }
    if (cfg.storage.s3 && cfg.storage.filesystem) {
      ctx.addIssue({ code: 'custom', path: ['storage'], message: 'configure one storage driver: filesystem or s3, not both' });
    }
  });

export type BerthConfig = z.infer<typeof configSchema>;

/** Parses "30s", "15m", "24h", "7d", "250ms" or a number of seconds into milliseconds. */
export function durationMs(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!m) throw new Error(`invalid duration "${value}"`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}
