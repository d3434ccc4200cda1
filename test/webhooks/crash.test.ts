import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { ROOT, startBerthProcess, tempDir, testMetadataEnv, type BerthProcess } from '../helpers/server.js';
import { Receiver, json, type Received } from './support.js';

const idOf = (r: Pick<Received, 'headers'>): string => String(r.headers['x-berth-event-id']);
const tagOf = (r: Pick<Received, 'body'>): string => json(r as Received).events[0].target.tag;

/**
 * kill -9 of a real `berth serve` between a push and its webhook, and while a delivery is in
 * flight: after the restart every event arrives, each under its one event id.
 */
describe('webhooks survive kill -9 of berth serve', () => {
  let receiver: Receiver;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let berth: BerthProcess | undefined;

  before(async () => {
    receiver = await Receiver.start();
    dataDir = tempDir('berth-webhook-crash-');
    const configFile = path.join(dataDir, 'berth.yaml');
    writeFileSync(
      configFile,
      YAML.stringify({
        events: { interval: '100ms' },
        gc: { enabled: false },
        notifications: {
          interval: '100ms',
          endpoints: [{ name: 'ci', url: receiver.url('/hook'), backoff: '100ms', timeout: '10s', ignore: { actions: ['pull'] } }],
        },
      }),
    );
    env = { BERTH_CONFIG: configFile, BERTH_DATA_DIR: dataDir };
  });
  after(async () => {
    await berth?.kill();
    await receiver?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async () => {
    berth = await startBerthProcess(env);
    return new RegistryClient(berth.url);
  };

  it('killed right after the pushes, before any delivery: both events arrive after the restart, once each', async () => {
    await receiver.stop();
    const client = await start();
    await client.pushImage('crash/app', 'k1', makeImage({ layers: 1, layerSize: 32 }));
    await client.pushImage('crash/app', 'k2', makeImage({ layers: 1, layerSize: 32 }));
    await berth!.kill();
    await receiver.listen();
    await start();
    await receiver.waitFor('k1 and k2', () => receiver.delivered('/hook').length >= 2, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const delivered = receiver.delivered('/hook');
    assert.deepEqual(delivered.map(tagOf), ['k1', 'k2']);
    assert.equal(new Set(delivered.map(idOf)).size, 2, 'one delivery per event id');
  });

  it('killed while the receiver holds its answer: the event is sent again after the restart under the same id', async () => {
    // The server restarted by the previous test goes on.
    receiver.delay = () => 60_000;
    const client = new RegistryClient(berth!.url);
    await client.pushImage('crash/app', 'k3', makeImage({ layers: 1, layerSize: 32 }));
    await receiver.waitFor('k3 in flight', () => receiver.arrivals.some((r) => tagOf(r) === 'k3'), 20_000);
    const first = receiver.arrivals.find((r) => tagOf(r) === 'k3')!;
    await berth!.kill();
    receiver.delay = () => 0;
    await start();
    await receiver.waitFor('k3 answered', () => receiver.delivered('/hook').some((r) => tagOf(r) === 'k3' && r.at > first.at), 20_000);
    const k3 = receiver.arrivals.filter((r) => tagOf(r) === 'k3');
    assert.ok(k3.length >= 2, 'at-least-once: the unanswered attempt is repeated');
    assert.ok(
      k3.every((r) => idOf(r) === idOf(first)),
      'under the same event id, so the receiver can drop the repeat',
    );
    assert.equal(new Set(receiver.arrivals.map(idOf)).size, 3, 'three events in all (k1, k2, k3)');
  });

  it('berth webhooks deliveries and redeliver, next to the running server', async () => {
    // The server's metadata database (PostgreSQL or MySQL in those passes), as startBerthProcess chose it.
    const cliEnv = { ...process.env, ...(await testMetadataEnv(dataDir, env)), ...env };
    const cli = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'webhooks', ...args],
          { cwd: ROOT, env: cliEnv, timeout: 60_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const listed = await cli('deliveries', '--endpoint', 'config:ci', '--status', 'delivered', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const log = JSON.parse(listed.stdout) as { id: number; eventId: string; status: string; attempts: number }[];
    const k1 = receiver.delivered('/hook').find((r) => tagOf(r) === 'k1')!;
    const entry = log.find((d) => d.eventId === idOf(k1))!;
    assert.ok(entry && entry.status === 'delivered' && entry.attempts >= 1, listed.stdout);
    const before = receiver.delivered('/hook').filter((r) => idOf(r) === entry.eventId).length;
    const again = await cli('redeliver', String(entry.id));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`redelivery of ${entry.id}`));
    await receiver.waitFor(
      'the redelivery',
      () => receiver.delivered('/hook').filter((r) => idOf(r) === entry.eventId).length > before,
      20_000,
    );
    const missing = await cli('redeliver', '99999999');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /webhook delivery 99999999 not found/);
    const wrong = await cli('deliveries', '--status', 'bogus');
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--status must be pending, delivered or failed/);
  });
});
