import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addMember, addProject, addUser, adminAuth, api, authConfig, basic } from '../auth/support.js';
import { makeImage, RegistryClient } from '../helpers/registry-client.js';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { closedPort, parseSyslog, readJsonLines, tcpReceiver, udpReceiver, waitFor, type ExportedEntry } from './support.js';

const DEV = basic('dev', 'dev-secret-1');
/** RFC 5424 facilities of the two syslog sinks: local3 (given) and authpriv (the default). */
const LOCAL3 = 19;
const AUTHPRIV = 10;

describe('audit sinks: every audited action of a scripted sequence reaches a file, UDP and TCP syslog', () => {
  let server: TestServer;
  let udp: Awaited<ReturnType<typeof udpReceiver>>;
  let tcp: Awaited<ReturnType<typeof tcpReceiver>>;
  let late: Awaited<ReturnType<typeof tcpReceiver>> | undefined;
  let latePort = 0;
  const dir = tempDir('berth-audit-sinks-');
  const file = path.join(dir, 'audit.jsonl');
  const refusals = path.join(dir, 'refusals.jsonl');
  let audited: ExportedEntry[] = [];

  before(async () => {
    udp = await udpReceiver();
    tcp = await tcpReceiver();
    latePort = await closedPort();
    server = await startTestServer(
      authConfig(
        'basic',
        {},
        {
          events: { interval: '100ms' },
          audit: {
            sinks: [
              { type: 'file', path: file },
              { type: 'file', path: refusals, outcomes: ['failure', 'denied'] },
              { type: 'syslog', host: '127.0.0.1', port: udp.port, facility: 'local3' },
              { type: 'syslog', host: '127.0.0.1', port: tcp.port, protocol: 'tcp' },
              // A receiver that is down until the last test: the sink waits at its cursor.
              { type: 'syslog', host: '127.0.0.1', port: latePort, protocol: 'tcp', name: 'late' },
            ],
          },
        },
      ),
    );
    // The sequence: project and users created (admin login), a push (dev login), a wrong
    // password, a pull refused to an outsider, a tag deleted through /v2.
    await addUser(server, 'dev', 'dev-secret-1');
    await addUser(server, 'outsider', 'outsider-secret-1');
    await addProject(server, 'team');
    await addMember(server, 'team', 'dev', 'developer');
    await new RegistryClient(server.url, { authorization: DEV }).pushImage('team/app', '1', makeImage({ layers: 1, layerSize: 32 }));
    assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('dev', 'wrong-password') } })).status, 401);
    // A name needing RFC 5424 escapes ('"', '\\', ']') in the structured data.
    assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('q"u]o\\te', 'wrong-password') } })).status, 401);
    const pull = await new RegistryClient(server.url, { authorization: basic('outsider', 'outsider-secret-1') }).fetch(
      '/v2/team/app/manifests/1',
    );
    assert.equal(pull.status, 403);
    const deleted = await new RegistryClient(server.url, { authorization: adminAuth() }).fetch('/v2/team/app/manifests/1', {
      method: 'DELETE',
    });
    assert.equal(deleted.status, 202);
    await waitFor('the tag delete in the audit log', async () => (await auditLog()).some((e) => e.action === 'tag.delete'));
    audited = await auditLog();
  });

  after(async () => {
    await server?.destroy();
    await udp?.close();
    await tcp?.close();
    await late?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function auditLog(): Promise<ExportedEntry[]> {
    const res = await api(server, 'GET', '/audit?limit=1000', adminAuth());
    assert.equal(res.status, 200);
    return ((await res.json()) as ExportedEntry[]).reverse();
  }

  it('the sequence produced every kind of entry', () => {
    const actions = new Set(audited.map((e) => e.action));
    for (const action of ['login', 'login.failed', 'user.create', 'project.create', 'member.set', 'access.denied', 'tag.delete'])
      assert.ok(actions.has(action), `${action} audited`);
  });

  it('the JSON-lines file holds every entry once, in order, with the fields of the audit API', async () => {
    await waitFor('every entry in the file', () => readJsonLines(file).length >= audited.length);
    assert.deepEqual(readJsonLines(file), audited);
    const denied = audited.find((e) => e.action === 'access.denied')!;
    assert.equal(denied.actor, 'outsider');
    assert.equal(denied.outcome, 'denied');
    assert.equal(denied.project, 'team');
    assert.equal(denied.target, 'GET /v2/team/app/manifests/1');
    const failed = audited.find((e) => e.action === 'login.failed')!;
    assert.ok(audited.some((e) => e.action === 'login.failed' && e.actor === 'q"u]o\\te'));
    assert.deepEqual([failed.actor, failed.outcome, failed.ip], ['dev', 'failure', '127.0.0.1']);
    const deletion = audited.find((e) => e.action === 'tag.delete')!;
    assert.deepEqual([deletion.actor, deletion.target, deletion.project, deletion.outcome], ['admin', 'team/app:1', 'team', 'success']);
  });

  it('a sink filtered by outcome gets only the refusals', async () => {
    const expected = audited.filter((e) => e.outcome !== 'success');
    assert.ok(expected.length >= 2);
    await waitFor('the refusals in their file', () => readJsonLines(refusals).length >= expected.length);
    assert.deepEqual(readJsonLines(refusals), expected);
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`syslog over ${transport}: RFC 5424 messages with version, timestamp, hostname, app-name, msgid, structured data and the entry`, async () => {
      const receiver = transport === 'udp' ? udp : tcp;
      await waitFor(`every entry over ${transport}`, () => receiver.messages.length >= audited.length);
      const parsed = receiver.messages.map(parseSyslog);
      assert.equal(parsed.length, audited.length);
      const facility = transport === 'udp' ? LOCAL3 : AUTHPRIV;
      parsed.forEach((m, i) => {
        const entry = audited[i]!;
        assert.equal(m.version, 1);
        assert.equal(m.pri, facility * 8 + (entry.outcome === 'success' ? 6 : 4), `PRI of ${entry.action}`);
        assert.equal(m.timestamp, entry.at);
        assert.equal(m.hostname, os.hostname());
        assert.equal(m.appName, 'berth');
        assert.equal(m.procId, String(process.pid));
        assert.equal(m.msgId, entry.action);
        assert.equal(m.sdId, 'audit@32473');
        assert.deepEqual(m.params, {
          id: String(entry.id),
          actor: entry.actor,
          action: entry.action,
          resource: entry.target,
          outcome: entry.outcome,
          ...(entry.project === null ? {} : { project: entry.project }),
          ...(entry.ip === null ? {} : { ip: entry.ip }),
        });
        assert.deepEqual(JSON.parse(m.msg), entry);
      });
    });
  }

  it('a TCP receiver that was down gets every entry, in order, once it listens', async () => {
    late = await tcpReceiver(latePort);
    await waitFor('every entry at the receiver that came up', () => late!.messages.length >= audited.length);
    assert.deepEqual(
      late.messages.map((m) => Number(parseSyslog(m).params.id)),
      audited.map((e) => e.id),
    );
  });
});

describe('docs/observability.md › Audit export', () => {
  it('its berth.yaml example is a valid configuration as written', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/observability.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Audit export'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(yaml, 'a yaml block in the section');
    const dir = tempDir('berth-audit-doc-');
    try {
      writeFileSync(path.join(dir, 'berth.yaml'), yaml);
      const { config } = loadConfig({ file: path.join(dir, 'berth.yaml'), env: {} });
      assert.deepEqual(
        config.audit.sinks.map((s) => s.type),
        ['file', 'syslog', 'syslog'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a sink missing its host is refused, naming the key', () => {
    assert.throws(() => configSchema.parse({ audit: { sinks: [{ type: 'syslog', facility: 'local9' }] } }), /audit.*sinks/s);
    const result = configSchema.safeParse({
      audit: {
        sinks: [
          { type: 'file', path: '/tmp/a' },
          { type: 'syslog', port: 514 },
        ],
      },
    });
    assert.equal(result.success, false);
    assert.deepEqual(result.error!.issues[0]!.path, ['audit', 'sinks', 1, 'host']);
  });
});
