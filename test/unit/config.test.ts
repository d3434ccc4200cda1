import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, loadConfig, redactConfig } from '../../src/config/load.js';
import { durationMs } from '../../src/config/schema.js';
import { ROOT, tempDir } from '../helpers/server.js';

const dir = tempDir('berth-config-');
after(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('configuration: berth.yaml + BERTH_* environment', () => {
  it('defaults give a working embedded registry on 0.0.0.0:5000 with data under ./data', () => {
    const { config, file } = loadConfig({ env: {}, file: undefined });
    assert.equal(file, null);
    assert.equal(config.http.addr, '0.0.0.0:5000');
    assert.equal(config.metadata.driver, 'sqlite');
    assert.equal(config.data.dir, path.resolve('data'));
    assert.equal(config.metadata.path, path.resolve('data', 'berth.db'));
    assert.equal(config.storage.filesystem?.rootdirectory, path.resolve('data', 'storage'));
    assert.equal(config.storage.delete.enabled, true);
    assert.equal(config.limits.manifestsize, 4 * 1024 * 1024);
  });

  it('reads Distribution-style keys from a YAML file', () => {
    const file = configFile(
      'a.yaml',
      'version: 0.1\nlog:\n  level: debug\nhttp:\n  addr: 127.0.0.1:6000\nstorage:\n  delete:\n    enabled: false\n',
    );
    const { config } = loadConfig({ file, env: {} });
    assert.equal(config.log.level, 'debug');
    assert.equal(config.http.addr, '127.0.0.1:6000');
    assert.equal(config.storage.delete.enabled, false);
  });

  it('environment overrides the file, key by key, with typed values (BERTH_HTTP_ADDR → http.addr)', () => {
    const file = configFile('b.yaml', 'http:\n  addr: 127.0.0.1:6000\n');
    const { config } = loadConfig({
      file,
      env: {
        BERTH_HTTP_ADDR: '127.0.0.1:7000',
        BERTH_STORAGE_DELETE_ENABLED: 'false',
        BERTH_LIMITS_MANIFESTSIZE: '1024',
        BERTH_DATA_DIR: dir,
      },
    });
    assert.equal(config.http.addr, '127.0.0.1:7000');
    assert.equal(config.storage.delete.enabled, false);
    assert.equal(config.limits.manifestsize, 1024);
    assert.equal(config.metadata.path, path.join(dir, 'berth.db'));
  });

  it('BERTH_CONFIG names the file; unrelated BERTH_* variables are ignored', () => {
    const file = configFile('c.yaml', 'http:\n  addr: 127.0.0.1:6001\n');
    const { config } = loadConfig({ env: { BERTH_CONFIG: file, BERTH_TEST_METADATA: 'x', BERTH_NOT_A_KEY: '1' } });
    assert.equal(config.http.addr, '127.0.0.1:6001');
  });

  it('a bad value is refused with a message naming the key', () => {
    assert.throws(
      () => loadConfig({ env: { BERTH_HTTP_ADDR: 'not an address' } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /http\.addr: expected a listen address such as ':5000'.*; set by BERTH_HTTP_ADDR="not an address"/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ env: { BERTH_LIMITS_MANIFESTSIZE: '-5' } }),
      (err: unknown) => err instanceof ConfigError && /limits\.manifestsize/.test(err.message),
    );
  });

  it('an unknown key in the file is refused, naming it (typos must not be silently ignored)', () => {
    const file = configFile('d.yaml', 'http:\n  adr: 127.0.0.1:6000\n');
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => err instanceof ConfigError && /http/.test(err.message) && /adr/.test(err.message),
    );
  });

  it('invalid YAML and unreadable files give clear errors', () => {
    const file = configFile('e.yaml', 'http: [unclosed\n');
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => err instanceof ConfigError && /not valid YAML/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ file: path.join(dir, 'missing.yaml'), env: {} }),
      (err: unknown) => err instanceof ConfigError && /cannot read config file/.test(err.message),
    );
  });

  it('a bad boolean from the environment names the variable and the accepted words', () => {
    assert.throws(
      () => loadConfig({ env: { BERTH_STORAGE_DELETE_ENABLED: 'maybe' } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes(
          'storage.delete.enabled: expected true or false (yes/no, on/off, 1/0 are accepted too); set by BERTH_STORAGE_DELETE_ENABLED="maybe"',
        ),
    );
  });

  it('booleans accept yes/no, on/off, 1/0 and true/false in any case, from the environment and from the file', () => {
    for (const [word, expected] of [
      ['yes', true],
      ['NO', false],
      ['on', true],
      ['Off', false],
      ['1', true],
      ['0', false],
      ['TRUE', true],
      ['false', false],
    ] as const) {
      assert.equal(
        loadConfig({ env: { BERTH_STORAGE_DELETE_ENABLED: word } }).config.storage.delete.enabled,
        expected,
        `BERTH_STORAGE_DELETE_ENABLED=${word}`,
      );
    }
    const file = configFile('bool.yaml', 'storage:\n  delete:\n    enabled: no\n  maintenance:\n    readonly:\n      enabled: yes\n');
    const { config } = loadConfig({ file, env: {} });
    assert.equal(config.storage.delete.enabled, false);
    assert.equal(config.storage.maintenance.readonly.enabled, true);
  });

  it('addr: 5000 (a number) is a port on every interface; any other non-address says what an address looks like', () => {
    assert.equal(loadConfig({ file: configFile('port.yaml', 'http:\n  addr: 5000\n'), env: {} }).config.http.addr, '0.0.0.0:5000');
    assert.equal(loadConfig({ env: { BERTH_HTTP_ADDR: '6123' } }).config.http.addr, '0.0.0.0:6123');
    assert.throws(
      () => loadConfig({ file: configFile('addr.yaml', 'http:\n  addr: [5000]\n'), env: {} }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /http\.addr: expected a listen address such as ':5000', '0\.0\.0\.0:5000' or '127\.0\.0\.1:5000' \(or a port number\)/.test(
          err.message,
        ),
    );
  });

  it('a misspelt BERTH_* variable is a warning naming the closest setting; BERTH_CONFIG, BERTH_ADMIN_PASSWORD and BERTH_TEST_* are not', () => {
    const { config, warnings } = loadConfig({
      env: {
        BERTH_STORAGE_DELETE_ENABLE: 'false',
        BERTH_HTTP_ADR: '127.0.0.1:1',
        BERTH_ADMIN_PASSWORD: 'x',
        BERTH_TEST_METADATA: 'postgres',
        BERTH_QQQQQQQQQQQQQQQQQQQQQQQQ: '1',
      },
    });
    assert.equal(config.storage.delete.enabled, true, 'the misspelt variable changes nothing');
    assert.deepEqual(warnings, [
      'BERTH_HTTP_ADR is not a Berth setting and is ignored; did you mean BERTH_HTTP_ADDR?',
      'BERTH_QQQQQQQQQQQQQQQQQQQQQQQQ is not a Berth setting and is ignored (`berth config check` lists every key)',
      'BERTH_STORAGE_DELETE_ENABLE is not a Berth setting and is ignored; did you mean BERTH_STORAGE_DELETE_ENABLED?',
    ]);
    assert.deepEqual(loadConfig({ env: { BERTH_HTTP_ADDR: '127.0.0.1:1' } }).warnings, []);
  });

  it('postgres without a url is refused', () => {
    assert.throws(
      () => loadConfig({ env: { BERTH_METADATA_DRIVER: 'postgres' } }),
      (err: unknown) => err instanceof ConfigError && /metadata\.url/.test(err.message),
    );
  });

  it('durations accept ms/s/m/h/d and plain seconds', () => {
    assert.equal(durationMs('250ms'), 250);
    assert.equal(durationMs('30s'), 30_000);
    assert.equal(durationMs('24h'), 86_400_000);
    assert.equal(durationMs(2), 2000);
    assert.throws(() => durationMs('soon'));
  });

  it('redactConfig masks secret keys and passwords in URLs, and nothing else', () => {
    const redacted = redactConfig({
      metadata: { url: 'postgres://berth:hunter2@db:5432/berth' },
      storage: { s3: { accesskey: 'AKIA', secretkey: 'shh', bucket: 'b' } },
      auth: { admin: { password: 'pw' } },
    }) as { metadata: { url: string }; storage: { s3: Record<string, string> }; auth: { admin: { password: string } } };
    assert.equal(redacted.metadata.url, 'postgres://berth:********@db:5432/berth');
    assert.equal(redacted.storage.s3.secretkey, '********');
    assert.equal(redacted.storage.s3.bucket, 'b');
    assert.equal(redacted.auth.admin.password, '********');
  });
});

describe('berth CLI', () => {
  const run = promisify(execFile);
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
    });

  it('berth --version prints the package version', async () => {
    const { stdout } = await cli(['--version']);
    assert.match(stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('berth config check prints the effective config with secrets masked', async () => {
    const { stdout } = await cli(['config', 'check'], {
      BERTH_HTTP_ADDR: '127.0.0.1:6500',
      BERTH_METADATA_DRIVER: 'postgres',
      BERTH_METADATA_URL: 'postgres://u:topsecret@localhost/db',
    });
    assert.match(stdout, /configuration OK/);
    assert.match(stdout, /"addr": "127\.0\.0\.1:6500"/);
    assert.doesNotMatch(stdout, /topsecret/);
  });

  it('berth config check warns about a misspelt BERTH_* variable on stderr, naming the closest one, and still succeeds', async () => {
    const { stdout, stderr } = await cli(['config', 'check'], { BERTH_STORAGE_DELETE_ENABLE: 'false' });
    assert.match(stdout, /configuration OK/);
    assert.match(
      stderr,
      /berth: warning: BERTH_STORAGE_DELETE_ENABLE is not a Berth setting and is ignored; did you mean BERTH_STORAGE_DELETE_ENABLED\?/,
    );
  });

  it('berth serve warns about a misspelt BERTH_* variable at start', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        BERTH_HTTP_ADDR: '127.0.0.1:0',
        BERTH_DATA_DIR: path.join(dir, 'serve-data'),
        BERTH_GC_GRACEPERIODE: '2h',
      },
    });
    try {
      let stderr = '';
      const warned = await new Promise<boolean>((resolve) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('BERTH_GC_GRACEPERIODE')) resolve(true);
        });
        child.once('exit', () => resolve(false));
      });
      assert.ok(warned, `no warning; stderr: ${stderr}`);
      assert.match(
        stderr,
        /berth: warning: BERTH_GC_GRACEPERIODE is not a Berth setting and is ignored; did you mean BERTH_GC_GRACEPERIOD\?/,
      );
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });

  it('berth config check exits 2 naming the bad key', async () => {
    await assert.rejects(cli(['config', 'check'], { BERTH_HTTP_ADDR: 'nope' }), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /http\.addr/);
      return true;
    });
  });
});
