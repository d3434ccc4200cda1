import type { Command } from 'commander';
import type { RegistryService } from '../registries/service.js';
import { out, type LoadConfig } from './users.js';

interface AddFlags {
  kind: string;
  username?: string;
  passwordStdin?: boolean;
  passwordEnv?: string;
  insecure?: boolean;
  caFile?: string;
  description?: string;
  json?: boolean;
}

/**
 * Opens the server's stores (same config, metadata DB and secrets key), runs `fn` on the
 * registry endpoint service the admin API uses, closes them. A refused request prints its
 * message, exit status 1 (a wrong option: 2).
 */
async function withRegistries(loadConfig: LoadConfig, fn: (service: RegistryService) => Promise<void>): Promise<void> {
  const config = await loadConfig();
  const [{ openStores }, { RegistryService }, { RegistryError }] = await Promise.all([
    import('../stores.js'),
    import('../registries/service.js'),
    import('../core/errors.js'),
  ]);
  const stores = await openStores(config);
  try {
    const service = new RegistryService(stores.registries);
    // As in compose.ts: an endpoint a cache project uses cannot be removed.
    const { ProxyCacheService } = await import('../registries/proxy-service.js');
    const proxy = new ProxyCacheService(stores.proxyCache, stores.registries, { refresh: async () => undefined });
    service.addUsageCheck((endpoint) => proxy.usersOf(endpoint.id));
    await fn(service);
  } catch (err) {
    const wrongOption = (err as { usage?: boolean }).usage === true;
    if (!(err instanceof RegistryError) && !wrongOption) throw err;
    process.stderr.write(`berth: ${(err as Error).message}\n`);
    process.exitCode = wrongOption ? 2 : 1;
  } finally {
    await stores.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `berth registry add|list|remove|ping`: remote registry endpoints, as /api/v1/registries. */
export function registerRegistryCommands(program: Command, loadConfig: LoadConfig): void {
  const registry = program
    .command('registry')
    .description('remote registry endpoints for replication and pull-through cache projects (docs/proxy-cache.md)');
  registry
    .command('add <name> <url>')
    .description(
      'add an endpoint; the credential is read from stdin or an environment variable, never from the command line, and stored sealed',
    )
    .option('--kind <kind>', 'distribution, berth, harbor, docker-hub or other', 'other')
    .option('--username <user>', 'user for Basic auth or the token flow')
    .option('--password-stdin', 'read the password or token from stdin')
    .option('--password-env <var>', 'read the password or token from this environment variable')
    .option('--insecure', 'skip TLS certificate verification')
    .option('--ca-file <pem>', 'PEM CA certificates to trust for this endpoint')
    .option('--description <text>', 'free text')
    .option('--json', 'print the endpoint as JSON')
    .action((name: string, url: string, flags: AddFlags) =>
      withRegistries(loadConfig, async (service) => {
        const { REGISTRY_KINDS } = await import('../registries/ports.js');
        if (!(REGISTRY_KINDS as readonly string[]).includes(flags.kind)) throw usage(`--kind must be one of ${REGISTRY_KINDS.join(', ')}`);
        if (flags.passwordStdin && flags.passwordEnv) throw usage('give --password-stdin or --password-env, not both');
        let credential: string | null = null;
        if (flags.passwordStdin) credential = await readStdin();
        else if (flags.passwordEnv) {
          credential = process.env[flags.passwordEnv] ?? null;
          if (credential === null) throw usage(`environment variable ${flags.passwordEnv} is not set`);
        }
        if (credential !== null && !flags.username) throw usage('a password needs --username');
        const caBundle = flags.caFile ? (await import('node:fs')).readFileSync(flags.caFile, 'utf8') : null;
        const { endpointView } = await import('../registries/service.js');
        const created = endpointView(
          await service.create({
            name,
            url,
            kind: flags.kind as (typeof REGISTRY_KINDS)[number],
            description: flags.description ?? '',
            username: flags.username ?? null,
            credential: credential || null,
            insecure: flags.insecure === true,
            caBundle,
          }),
        );
        out(flags.json ? JSON.stringify(created, null, 2) : `added registry endpoint ${created.name} (${created.url})`);
      }),
    );
  registry
    .command('list')
    .description('the endpoints (credentials are never shown)')
    .option('--json', 'print them as JSON (as GET /api/v1/registries)')
    .action((flags: { json?: boolean }) =>
      withRegistries(loadConfig, async (service) => {
        const { endpointView } = await import('../registries/service.js');
        const endpoints = (await service.list()).map(endpointView);
        if (flags.json) return out(JSON.stringify(endpoints, null, 2));
        if (endpoints.length === 0) return out('no registry endpoints');
        for (const e of endpoints) {
          const auth = e.username ? `${e.username}${e.hasCredential ? ' (credential set)' : ''}` : 'anonymous';
          out(`${e.name.padEnd(20)} ${e.kind.padEnd(12)} ${e.url}  ${auth}${e.insecure ? '  insecure' : ''}`);
        }
      }),
    );
  registry
    .command('remove <name>')
    .description('delete an endpoint (refused while a cache project or replication policy uses it)')
    .action((name: string) =>
      withRegistries(loadConfig, async (service) => {
        await service.remove(name);
        out(`removed registry endpoint ${name}`);
      }),
    );
  registry
    .command('ping <name>')
    .description('test connection: GET /v2/, authenticating as the registry asks; exit status 1 when it fails')
    .option('--json', 'print the result as JSON (as POST /api/v1/registries/<name>/ping)')
    .action((name: string, flags: { json?: boolean }) =>
      withRegistries(loadConfig, async (service) => {
        const result = await service.ping(name);
        out(
          flags.json
            ? JSON.stringify(result, null, 2)
            : result.ok
              ? `ok: ${name} answered in ${result.latencyMs} ms (auth: ${result.auth})`
              : `failed: ${result.reason}`,
        );
        if (!result.ok) process.exitCode = 1;
      }),
    );
}

/**
 * `berth registry cache set|list|remove`: pull-through cache projects, as
 * /api/v1/projects/<project>/proxy-cache. Bindings changed here apply to running servers within
 * their refresh interval (10 s).
 */
export function registerCacheCommands(program: Command, loadConfig: LoadConfig): void {
  const registry = program.commands.find((c) => c.name() === 'registry')!;
  const cache = registry.command('cache').description('pull-through cache projects bound to an endpoint (docs/proxy-cache.md)');
  const withCache = async (fn: (service: import('../registries/proxy-service.js').ProxyCacheService, ttlMs: number) => Promise<void>) => {
    const config = await loadConfig();
    const [{ openStores }, { ProxyCacheService }, { RegistryError }, { durationMs }, { proxyCachePolicyOnBind }] = await Promise.all([
      import('../stores.js'),
      import('../registries/proxy-service.js'),
      import('../core/errors.js'),
      import('../config/schema.js'),
      import('../retention/policy.js'),
    ]);
    const stores = await openStores(config);
    try {
      const service = new ProxyCacheService(
        stores.proxyCache,
        stores.registries,
        { refresh: async () => undefined },
        proxyCachePolicyOnBind(stores.retention, durationMs(config.proxy.ttl)),
      );
      await fn(service, durationMs(config.proxy.tagttl));
    } catch (err) {
      const wrongOption = (err as { usage?: boolean }).usage === true;
      if (!(err instanceof RegistryError) && !wrongOption) throw err;
      process.stderr.write(`berth: ${(err as Error).message}\n`);
      process.exitCode = wrongOption ? 2 : 1;
    } finally {
      await stores.close();
    }
  };
  cache
    .command('set <project> <endpoint>')
    .description('make a project a pull-through cache of an endpoint (pushes to it are refused from then on)')
    .option('--namespace <prefix>', 'prefix of repository names upstream (<project>/app pulls <prefix>/app)')
    .option('--tag-ttl <seconds>', 'revalidate a cached tag upstream only after this many seconds (default proxy.tagttl)')
    .option('--keep-deleted-tags', 'a tag deleted upstream stays pullable from the cache (default proxy.keepdeletedtags)')
    .option('--no-keep-deleted-tags', 'a tag deleted upstream is deleted from the cache when revalidated')
    .action((project: string, endpoint: string, flags: { namespace?: string; tagTtl?: string; keepDeletedTags?: boolean }) =>
      withCache(async (service, defaultTtlMs) => {
        if (flags.tagTtl !== undefined && !/^\d{1,8}$/.test(flags.tagTtl)) throw usage('--tag-ttl must be a whole number of seconds');
        const ttl = flags.tagTtl === undefined ? defaultTtlMs : Number(flags.tagTtl) * 1000;
        const saved = await service.view(
          await service.set(project, {
            endpoint,
            namespace: flags.namespace ?? null,
            tagTtlMs: ttl,
            keepDeletedTags: flags.keepDeletedTags ?? null,
          }),
        );
        const deleted =
          saved.keepDeletedTags === null
            ? ''
            : saved.keepDeletedTags
              ? ', tags deleted upstream stay'
              : ', tags deleted upstream are deleted';
        out(
          `project ${saved.project} pulls through ${saved.endpoint}${saved.namespace ? ` (namespace ${saved.namespace})` : ''}, tags revalidated after ${saved.tagTtlSeconds} s${deleted}`,
        );
      }),
    );
  cache
    .command('list')
    .description('the cache projects and their endpoints')
    .option('--json', 'print them as JSON (as GET /api/v1/proxy-cache)')
    .action((flags: { json?: boolean }) =>
      withCache(async (service) => {
        const views = await Promise.all((await service.list()).map((b) => service.view(b)));
        if (flags.json) return out(JSON.stringify(views, null, 2));
        if (views.length === 0) return out('no cache projects');
        for (const v of views)
          out(`${v.project.padEnd(20)} ${String(v.endpoint).padEnd(20)} ${v.namespace ?? '-'}  ttl ${v.tagTtlSeconds} s`);
      }),
    );
  cache
    .command('remove <project>')
    .description('unbind a cache project (cached blobs stay; it becomes a normal project)')
    .action((project: string) =>
      withCache(async (service) => {
        await service.remove(project);
        out(`project ${project} is no longer a pull-through cache`);
      }),
    );
}

/** A wrong option: its message alone, exit status 2. */
function usage(message: string): Error {
  return Object.assign(new Error(message), { usage: true });
}
