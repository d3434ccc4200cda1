import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, loadConfig, redactConfig } from '../../src/config/load.js';
import { redactUrl } from '../../src/config/redact.js';
import { decodeSecretsKey, PLAINTEXT_SEALER, SealedSecretError } from '../../src/core/secrets.js';
import { AesGcmSealer, readSecretsKey, secretsKeyId } from '../../src/secrets/index.js';
import { ROOT, tempDir } from '../helpers/server.js';

const exec = promisify(execFile);
const dir = tempDir('berth-secrets-');
after(() => rmSync(dir, { recursive: true, force: true }));

const KEY = randomBytes(32);
const OTHER = randomBytes(32);

describe('secrets at rest: AES-256-GCM sealing', () => {
  const sealer = new AesGcmSealer(KEY);

  it('seals into a berth:v1 envelope naming the key id, and opens back to the plain text', () => {
    const sealed = sealer.seal('{"d":"private-part"}', 'signing key k1');
    assert.match(sealed, new RegExp(`^berth:v1:${secretsKeyId(KEY)}:[A-Za-z0-9_-]+$`));
    assert.ok(!sealed.includes('private-part'));
    assert.equal(sealer.open(sealed, 'signing key k1'), '{"d":"private-part"}');
  });

  it('uses a fresh nonce each time: the same plain text seals differently', () => {
    assert.notEqual(sealer.seal('same', 'c'), sealer.seal('same', 'c'));
  });

  it('refuses a value moved to another context, altered, or sealed with another key', () => {
    const sealed = sealer.seal('secret', 'signing key k1');
    assert.throws(() => sealer.open(sealed, 'signing key k2'), SealedSecretError);
    const body = Buffer.from(sealed.slice(sealed.lastIndexOf(':') + 1), 'base64url');
    body[14] = (body[14] ?? 0) ^ 1;
    assert.throws(
      () => sealer.open(`${sealed.slice(0, sealed.lastIndexOf(':') + 1)}${body.toString('base64url')}`, 'signing key k1'),
      /does not open/,
    );
    const other = new AesGcmSealer(OTHER).seal('secret', 'signing key k1');
    assert.throws(
      () => sealer.open(other, 'signing key k1'),
      new RegExp(`sealed with secrets key ${secretsKeyId(OTHER)}, but the configured secrets key is ${sealer.keyId}`),
    );
  });

  it('passes plain text stored before a key was configured through, and marks it for sealing', () => {
    assert.equal(sealer.open('{"kty":"EC"}', 'signing key k1'), '{"kty":"EC"}');
    assert.equal(sealer.needsSealing('{"kty":"EC"}'), true);
    assert.equal(sealer.needsSealing(sealer.seal('x', 'c')), false);
  });

  it('while changing keys, values sealed with a previous key open and are marked for sealing again with the current one', () => {
    const old = new AesGcmSealer(OTHER).seal('secret', 'signing key k1');
    const rotating = new AesGcmSealer(KEY, [OTHER]);
    assert.equal(rotating.open(old, 'signing key k1'), 'secret');
    assert.equal(rotating.needsSealing(old), true);
    const resealed = rotating.seal('secret', 'signing key k1');
    assert.equal(rotating.needsSealing(resealed), false);
    assert.ok(resealed.startsWith(`berth:v1:${secretsKeyId(KEY)}:`));
    assert.throws(() => new AesGcmSealer(OTHER).open(resealed, 'signing key k1'), /secrets.previouskeys/);
  });

  it('without a key: values stay plain text, and a sealed one is a clear error, not a silent miss', () => {
    assert.equal(PLAINTEXT_SEALER.seal('x', 'c'), 'x');
    assert.equal(PLAINTEXT_SEALER.needsSealing('x'), false);
    assert.throws(
      () => PLAINTEXT_SEALER.open(sealer.seal('x', 'signing key k1'), 'signing key k1'),
      /signing key k1 is sealed with secrets key .* no secrets key is configured/,
    );
  });
});

describe('secrets at rest: the key setting', () => {
  it('takes 32 bytes as hex, base64 or base64url', () => {
    assert.deepEqual(decodeSecretsKey(KEY.toString('hex')), KEY);
    assert.deepEqual(decodeSecretsKey(KEY.toString('base64')), KEY);
    assert.deepEqual(decodeSecretsKey(`${KEY.toString('base64url')}\n`), KEY);
  });

  it('refuses other lengths and non-encodings, without repeating the value', () => {
    const short = randomBytes(31).toString('base64');
    assert.throws(
      () => decodeSecretsKey(short),
      (err: Error) => /32 random bytes.*decodes to 31 bytes/.test(err.message) && !err.message.includes(short),
    );
    assert.throws(() => decodeSecretsKey('not a key!'), /32 random bytes/);
  });

  it('BERTH_SECRETS_KEY is validated with the configuration; key and keyfile together are refused', () => {
    assert.equal(loadConfig({ env: { BERTH_SECRETS_KEY: KEY.toString('base64') } }).config.secrets.key, KEY.toString('base64'));
    const nearlyKey = randomBytes(31).toString('base64');
    assert.throws(
      () => loadConfig({ env: { BERTH_SECRETS_KEY: nearlyKey } }),
      (err: Error) =>
        err instanceof ConfigError &&
        /secrets\.key.*: a secrets key must be 32 random bytes/.test(err.message) &&
        /BERTH_SECRETS_KEY="\*{8}"/.test(err.message) &&
        !err.message.includes(nearlyKey),
    );
    assert.throws(() => loadConfig({ env: { BERTH_SECRETS_KEY: KEY.toString('hex'), BERTH_SECRETS_KEYFILE: '/k' } }), /not both/);
  });

  it('reads secrets.keyfile, and names the file when it is missing or malformed', () => {
    const file = path.join(dir, 'secrets.key');
    writeFileSync(file, `${KEY.toString('base64')}\n`);
    chmodSync(file, 0o600);
    assert.deepEqual(readSecretsKey({ keyfile: file }), KEY);
    assert.equal(readSecretsKey({}), null);
    assert.throws(() => readSecretsKey({ keyfile: path.join(dir, 'missing') }), /cannot read secrets.keyfile .*missing: ENOENT/);
    writeFileSync(file, 'abc');
    assert.throws(() => readSecretsKey({ keyfile: file }), /secrets.keyfile .*secrets.key: a secrets key must be 32 random bytes/);
  });

  it('BERTH_SECRETS_PREVIOUSKEYS takes a comma-separated list, needs a current key, and is masked like it', () => {
    const previous = [randomBytes(32).toString('hex'), randomBytes(32).toString('base64')];
    const { config } = loadConfig({ env: { BERTH_SECRETS_KEY: KEY.toString('base64'), BERTH_SECRETS_PREVIOUSKEYS: previous.join(', ') } });
    assert.deepEqual(config.secrets.previouskeys, previous);
    assert.deepEqual((redactConfig(config) as { secrets: { previouskeys: string[] } }).secrets.previouskeys, ['********', '********']);
    assert.throws(() => loadConfig({ env: { BERTH_SECRETS_PREVIOUSKEYS: previous[0] } }), /previous keys need the current one/);
  });

  it('redactConfig masks secrets.key', () => {
    const redacted = redactConfig({ secrets: { key: KEY.toString('hex') }, http: { tls: { key: '/etc/tls/key.pem' } } }) as {
      secrets: { key: string };
      http: { tls: { key: string } };
    };
    assert.equal(redacted.secrets.key, '********');
    assert.equal(redacted.http.tls.key, '/etc/tls/key.pem');
  });
});

describe('redactUrl: the one URL masking', () => {
  it('masks user:password@ and password-like query parameters of PostgreSQL and MySQL URLs', () => {
    const pg = redactUrl('postgres://u:secret1@h:5432/db?password=secret2&sslpassword=secret3&sslmode=require');
    assert.doesNotMatch(pg, /secret/);
    assert.match(pg, /^postgres:\/\/u:\*{8}@h:5432\/db\?/);
    assert.match(pg, /sslmode=require/);
    const mysql = redactUrl('mysql://root:secret1@127.0.0.1:3306/berth?password=secret2');
    assert.doesNotMatch(mysql, /secret/);
    assert.match(mysql, /^mysql:\/\/root:\*{8}@127\.0\.0\.1:3306\/berth/);
  });

  it('leaves a URL without secrets exactly as written', () => {
    assert.equal(redactUrl('https://registry.example.com'), 'https://registry.example.com');
    assert.equal(redactUrl('postgres://berth@db/berth?sslmode=verify-full'), 'postgres://berth@db/berth?sslmode=verify-full');
  });

  it('masks secrets in a string the URL parser refuses', () => {
    const masked = redactUrl('postgres://u:secret1@h:notaport/db?password=secret2&x=1');
    assert.doesNotMatch(masked, /secret/);
    assert.match(masked, /x=1/);
  });

  it('the registry client drops the user info and signatures of the URLs in its errors', async () => {
    const { redactUrl: clientRedact } = await import('../../src/client/errors.js');
    const masked = clientRedact('https://token123:pw@host/v2/?X-Amz-Signature=abc&n=1');
    assert.doesNotMatch(masked, /token123|pw@|abc/);
    assert.match(masked, /n=1/);
  });

  it('berth config check prints a PostgreSQL URL and the secrets key without their secrets', async () => {
    const key = KEY.toString('base64');
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'config', 'check'], {
      cwd: ROOT,
      env: {
        ...process.env,
        BERTH_CONFIG: '',
        BERTH_METADATA_DRIVER: 'postgres',
        BERTH_METADATA_URL: 'postgres://u:secret@h/db?password=secret2&sslpassword=x',
        BERTH_SECRETS_KEY: key,
      },
    });
    assert.match(stdout, /configuration OK/);
    assert.doesNotMatch(stdout, /:secret@|secret2|sslpassword=x/);
    assert.ok(!stdout.includes(key));
    assert.match(stdout, /"url": "postgres:\/\/u:\*{8}@h\/db\?password=\*{8}&sslpassword=\*{8}"/);
    assert.match(stdout, /"key": "\*{8}"/);
  });
});
