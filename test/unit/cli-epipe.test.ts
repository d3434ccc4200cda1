import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/server.js';

describe('the CLI writing into a closed pipe', () => {
  it('`berth config check | true`: the reader gone before berth writes ends berth with 0 and no stack trace', () => {
    // `true` exits at once, so every write berth makes meets a closed pipe (EPIPE).
    const cli = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(path.join(ROOT, 'src/cli.ts'))} config check`;
    const run = spawnSync('bash', ['-c', `${cli} | true; echo "berth-exit=\${PIPESTATUS[0]}" >&2`], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, BERTH_DATA_DIR: '/nonexistent-berth-epipe' },
    });
    assert.match(run.stderr, /berth-exit=0\n/, run.stderr);
    assert.doesNotMatch(run.stderr, /EPIPE|Unhandled|at .*\.js:\d+/, run.stderr);
  });
});
