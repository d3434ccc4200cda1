import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { runTool } from '../helpers/clients.js';
import { NGINX_BINARY, requireNginx } from '../helpers/nginx.js';
import { ROOT, tempDir } from '../helpers/server.js';
import { runCli } from '../robustness/support.js';

/**
 * The copy-paste examples of docs/deploy.md stay valid and in the guide verbatim: nginx accepts examples/nginx.conf,
 * Berth accepts examples/berth-ha.yaml (test/ha/replicas.test.ts also runs its replicas on
 * it), and examples/kubernetes.yaml is consistent with itself and with berth-ha.yaml.
 */

const EXAMPLES = path.join(ROOT, 'examples');
const SECRET_ENV = {
  BERTH_METADATA_URL: 'postgres://berth:secret@db.internal:5432/berth',
  BERTH_STORAGE_S3_ACCESSKEY: 'AKIAEXAMPLE',
  BERTH_STORAGE_S3_SECRETKEY: 'example-secret',
  BERTH_ADMIN_PASSWORD: 'example-admin-password',
};

describe('deployment examples', () => {
  let dir: string;
  before(() => {
    dir = tempDir('berth-examples-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('docs/deploy.md shows every example file verbatim, so what readers copy is what the tests check', () => {
    const guide = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
    for (const name of ['berth-ha.yaml', 'nginx.conf', 'kubernetes.yaml']) {
      const example = readFileSync(path.join(EXAMPLES, name), 'utf8').trimEnd();
      assert.ok(guide.includes(`\n${example}\n\`\`\``), `docs/deploy.md contains examples/${name} in a code block`);
    }
  });

  it('nginx -t accepts examples/nginx.conf inside a stock http block', async () => {
    requireNginx();
    const tls = path.join(dir, 'tls');
    mkdirSync(tls);
    await runTool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      path.join(tls, 'registry.key'),
      '-out',
      path.join(tls, 'registry.crt'),
      '-subj',
      '/CN=registry.example.com',
    ]);
    const site = readFileSync(path.join(EXAMPLES, 'nginx.conf'), 'utf8').replaceAll('/etc/nginx/tls/', `${tls}/`);
    writeFileSync(path.join(dir, 'berth.conf'), site);
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `pid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  include ${dir}/berth.conf;\n}\n`,
    );
    const result = await runTool(NGINX_BINARY, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { allowFailure: true });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /syntax is ok/);
  });

  it('berth config check accepts examples/berth-ha.yaml with the secrets from the environment', async () => {
    const result = await runCli(['--config', path.join(EXAMPLES, 'berth-ha.yaml'), 'config', 'check'], SECRET_ENV);
    assert.equal(result.code, 0, result.stderr);
    const effective = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as {
      metadata: { driver: string };
      storage: { s3?: { bucket: string }; filesystem?: unknown };
      auth: { mode: string };
    };
    assert.equal(effective.metadata.driver, 'postgres');
    assert.equal(effective.storage.s3?.bucket, 'berth-registry');
    assert.equal(effective.storage.filesystem, undefined, 'no replica-local blob storage');
    assert.equal(effective.auth.mode, 'token');
    assert.doesNotMatch(result.stdout, /example-secret|secret@db/, 'config check does not print the secrets');

    const missing = await runCli(['--config', path.join(EXAMPLES, 'berth-ha.yaml'), 'config', 'check'], {});
    assert.equal(missing.code, 2, 'without BERTH_METADATA_URL the configuration is refused');
    assert.match(missing.stderr, /metadata\.url/);
  });

  it('examples/kubernetes.yaml: 3 replicas, probes on /healthz and /readyz, every secret it reads exists, and its berth.yaml equals berth-ha.yaml', () => {
    const docs = YAML.parseAllDocuments(readFileSync(path.join(EXAMPLES, 'kubernetes.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject);
    const byKind = <T>(kind: string) => docs.find((d) => d.kind === kind) as unknown as T;
    assert.deepEqual(docs.map((d) => d.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'Ingress',
      'Namespace',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Secret',
      'Service',
    ]);

    const deployment = byKind<Deployment>('Deployment');
    assert.equal(deployment.spec.replicas, 3);
    const container = deployment.spec.template.spec.containers[0]!;
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    const secret = byKind<{ metadata: { name: string }; stringData: Record<string, string> }>('Secret');
    const env: Record<string, string> = {};
    for (const variable of container.env) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref) {
        assert.equal(ref.name, secret.metadata.name);
        assert.ok(ref.key in secret.stringData, `secret key ${ref.key} exists`);
        env[variable.name] = secret.stringData[ref.key]!;
      } else env[variable.name] = variable.value!;
    }

    const configMap = byKind<{ data: Record<string, string> }>('ConfigMap');
    const mounted = path.join(dir, 'berth.yaml');
    writeFileSync(mounted, configMap.data['berth.yaml']!);
    assert.equal(env.BERTH_CONFIG, '/etc/berth/berth.yaml');
    const fromConfigMap = loadConfig({ file: mounted, env: { ...env, BERTH_CONFIG: mounted } }).config;
    const fromExample = loadConfig({ file: path.join(EXAMPLES, 'berth-ha.yaml'), env: SECRET_ENV }).config;
    assert.deepEqual(withoutSecrets(fromConfigMap), withoutSecrets(fromExample), 'the ConfigMap holds the same effective configuration');

    const port = Number(fromConfigMap.http.addr.split(':').pop());
    assert.equal(container.ports.find((p) => p.name === 'http')?.containerPort, port, 'containerPort is http.addr');
  });
});

interface K8sObject {
  kind: string;
}

interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    template: {
      spec: {
        containers: {
          ports: { name: string; containerPort: number }[];
          env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
          livenessProbe: { httpGet: { path: string } };
          readinessProbe: { httpGet: { path: string } };
        }[];
      };
    };
  };
}

function withoutSecrets(config: ReturnType<typeof loadConfig>['config']) {
  const { accesskey: _a, secretkey: _s, ...s3 } = config.storage.s3!;
  return { ...config, metadata: { ...config.metadata, url: undefined }, storage: { ...config.storage, s3 } };
}
