import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layer rules of docs/architecture.md, enforced: each entry says what a folder of src/
 * may not import. Core imports nothing outside itself; adapters (metadata, storage) never
 * see HTTP; features depend inward (core, config, the jobs model) and never sideways on
 * each other; only the composition root (server.ts, compose.ts, stores.ts, cli/) wires them.
 */
const DRIVERS = ['kysely', 'pg', 'better-sqlite3', 'mysql2', '@aws-sdk/*'];
const FEATURES = [
  'auth',
  'gc',
  'events',
  'policies',
  'client',
  'fsck',
  'metrics',
  'retention',
  'audit',
  'quotas',
  'tags',
  'webhooks',
  'scanning',
  'signatures',
  'sbom',
  'registries',
  'replication',
  'browse',
];
const ROOT = ['**/server.js', '**/compose.js', '**/stores.js', '**/cli.js', '**/cli/**'];
const ADAPTERS = ['**/metadata/**', '**/storage/**'];
/** The secrets-at-rest implementation (src/secrets): chosen by the composition root; everyone else uses core's SecretSealer port. */
const SECRETS = ['**/secrets/**'];

/** Globals of the browser code under ui/ (readonly). */
const BROWSER_GLOBALS = Object.fromEntries(
  [
    'window',
    'document',
    'location',
    'history',
    'navigator',
    'localStorage',
    'fetch',
    'Request',
    'Response',
    'Headers',
    'URL',
    'URLSearchParams',
    'setTimeout',
    'clearTimeout',
    'console',
    'HTMLElement',
    'Event',
  ].map((name) => [name, 'readonly']),
);

function forbid(files, { groups = [], packages = [], message }) {
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...(groups.length > 0 ? [{ group: groups, message }] : []),
            ...(packages.length > 0 ? [{ group: packages, message: `${message} (no drivers, no HTTP framework)` }] : []),
          ],
        },
      ],
    },
  };
}

/**
 * What a feature may use of another: the distribution client (it depends only on core), and the
 * registry endpoints' port and client opener (replication and cache projects reach remotes through them).
 */
const SHARED_FEATURE_FILES = ['!**/registries/ports.js', '!**/registries/open-client.js', '!**/registries/tls-fetch.js'];
const featureRules = FEATURES.map((feature) =>
  forbid([`src/${feature}/**/*.ts`], {
    groups: [
      ...ROOT,
      ...ADAPTERS,
      ...SECRETS,
      '**/http/**',
      ...FEATURES.filter((f) => f !== feature && f !== 'client').map((f) => `**/${f}/**`),
      ...SHARED_FEATURE_FILES,
    ],
    packages: [...DRIVERS, 'fastify'],
    message: `src/${feature} is a feature: it may import core, config and the jobs model, never adapters, HTTP, the composition root or another feature (docs/architecture.md)`,
  }),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'bench/results/', 'ui/src/api/schema.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  forbid(['src/core/**/*.ts'], {
    groups: ['../**'],
    packages: [...DRIVERS, 'fastify', 'pino'],
    message: 'src/core holds the registry rules: it imports nothing outside src/core (docs/architecture.md)',
  }),
  forbid(['src/config/**/*.ts'], {
    groups: [...ROOT, ...ADAPTERS, ...SECRETS, '**/http/**', '**/jobs/**', ...FEATURES.map((f) => `**/${f}/**`)],
    message: 'src/config is the configuration schema: it imports no feature, adapter or HTTP code',
  }),
  forbid(['src/jobs/**/*.ts'], {
    groups: [...ROOT, ...ADAPTERS, ...SECRETS, '**/http/**', ...FEATURES.map((f) => `**/${f}/**`)],
    packages: [...DRIVERS, 'fastify'],
    message: 'src/jobs is the jobs model every feature uses: it imports only core',
  }),
  ...featureRules,
  forbid(['src/metadata/**/*.ts', 'src/storage/**/*.ts'], {
    groups: [
      ...ROOT,
      '**/http/**',
      // Adapters implement ports: they may import a feature's port file, not its logic.
      '../auth/*',
      '!../auth/ports.js',
      '!../auth/permissions.js',
      '!../auth/oidc',
      '../auth/oidc/*',
      '!../auth/oidc/ports.js',
      '../gc/*',
      '!../gc/ports.js',
      '../jobs/*',
      '!../jobs/ports.js',
      '!../jobs/leases.js',
      '../events/*',
      '!../events/ports.js',
      '../fsck/*',
      '!../fsck/types.js',
      '../retention/*',
      '!../retention/ports.js',
      '../metrics/*',
      '!../metrics/ports.js',
      '../quotas/*',
      '!../quotas/ports.js',
      '../tags/*',
      '!../tags/ports.js',
      '../webhooks/*',
      '!../webhooks/ports.js',
      '../scanning/*',
      '!../scanning/ports.js',
      '../signatures/*',
      '!../signatures/ports.js',
      '../sbom/*',
      '!../sbom/ports.js',
      '../browse/*',
      '!../browse/ports.js',
      '../registries/*',
      '!../registries/ports.js',
      '!../registries/proxy-ports.js',
      '../audit/**',
      '../policies/**',
      '../client/**',
      ...SECRETS,
    ],
    packages: ['fastify'],
    message: 'adapters move bytes and rows: they never import HTTP, the composition root or feature logic (only port files)',
  }),
  forbid(['src/secrets/**/*.ts'], {
    groups: [...ROOT, ...ADAPTERS, '**/http/**', '**/jobs/**', ...FEATURES.map((f) => `**/${f}/**`)],
    packages: [...DRIVERS, 'fastify'],
    message: "src/secrets seals secrets at rest behind core's SecretSealer port: it imports only core and config (docs/architecture.md)",
  }),
  forbid(['src/http/**/*.ts'], {
    groups: ['**/metadata/**', '**/storage/**', ...SECRETS, ...ROOT],
    packages: DRIVERS,
    message: 'src/http is thin: it calls core and the features it is given, never adapters or drivers',
  }),
  // The web UI (ui/): browser code. It talks to the server only through /api/v1 (the generated
  // client in ui/src/api), so it imports nothing of the server's source.
  {
    files: ['ui/**/*.{ts,tsx}'],
    languageOptions: { globals: BROWSER_GLOBALS },
  },
  forbid(['ui/src/**/*.{ts,tsx}'], {
    groups: ['**/src/core/**', '**/src/http/**', ...FEATURES.map((f) => `**/src/${f}/**`), ...ROOT, ...ADAPTERS],
    packages: ['fastify', 'node:*', ...DRIVERS],
    message: 'ui/ is the browser app: it reaches the server through /api/v1 (ui/src/api), never by importing server code or Node modules',
  }),
);
