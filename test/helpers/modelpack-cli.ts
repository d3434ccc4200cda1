import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GiB, MiB, peakRss, pullModel, pushModel, type Descriptor } from './modelpack.js';

/**
 * The ModelPack test client as a command (what tests run as a child process, so it can be killed):
 *
 *   node --import tsx test/helpers/modelpack-cli.ts push --registry http://127.0.0.1:5000 \
 *     --repository models/llama --tag v1 --seed s1 --layers 2 --layer-size 1GiB --chunk-size 64MiB --state /tmp/push.json
 *   node --import tsx test/helpers/modelpack-cli.ts pull --registry http://127.0.0.1:5000 \
 *     --repository models/llama --reference v1 --out /tmp/llama --parallel 8
 *
 * It prints one JSON object per line: progress events, then {"event":"done",…} with the seconds
 * taken, the bytes moved and its own peak RSS (VmHWM). Run `push` again with the same --state
 * after a kill and it resumes each unfinished layer from the upload's Range.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    registry: { type: 'string' },
    repository: { type: 'string' },
    tag: { type: 'string', default: 'latest' },
    reference: { type: 'string' },
    seed: { type: 'string', default: 'modelpack' },
    name: { type: 'string' },
    layers: { type: 'string', default: '2' },
    'layer-size': { type: 'string', default: '1GiB' },
    'chunk-size': { type: 'string', default: '64MiB' },
    state: { type: 'string' },
    subject: { type: 'string' },
    out: { type: 'string' },
    parallel: { type: 'string', default: '8' },
  },
});

function bytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(GiB|MiB|KiB|B)?$/.exec(text);
  if (!m) throw new Error(`not a size: ${text} (e.g. 1GiB, 64MiB, 4096)`);
  const unit = { GiB, MiB, KiB: 1024, B: 1 }[m[2] ?? 'B']!;
  return Math.round(Number(m[1]) * unit);
}

function required(name: keyof typeof values): string {
  const value = values[name];
  if (typeof value !== 'string') throw new Error(`--${name} is required`);
  return value;
}

const print = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage();
  const cpuSeconds = () => {
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / 1e6;
  };
  const command = positionals[0];
  if (command === 'push') {
    let subject: Descriptor | undefined;
    if (values.subject) subject = JSON.parse(values.subject) as Descriptor;
    const spec = { seed: values.seed!, layers: Number(values.layers), layerSize: bytes(values['layer-size']!), name: values.name, subject };
    const result = await pushModel({
      registry: required('registry'),
      repository: required('repository'),
      tag: values.tag!,
      spec,
      chunkSize: bytes(values['chunk-size']!),
      stateFile: values.state,
      onEvent: print,
    });
    print({
      event: 'done',
      command,
      manifestDigest: result.manifestDigest,
      bytes: spec.layers * spec.layerSize,
      seconds: seconds(),
      cpuSeconds: cpuSeconds(),
      peakRss: peakRss(),
    });
  } else if (command === 'pull') {
    const outDir = required('out');
    mkdirSync(outDir, { recursive: true });
    const result = await pullModel({
      registry: required('registry'),
      repository: required('repository'),
      reference: values.reference ?? values.tag!,
      outDir,
      parallel: Number(values.parallel),
      onEvent: print,
    });
    const total = result.files.reduce((sum, f) => sum + f.size, 0);
    print({
      event: 'done',
      command,
      manifestDigest: result.manifestDigest,
      files: result.files,
      bytes: total,
      seconds: seconds(),
      cpuSeconds: cpuSeconds(),
      peakRss: peakRss(),
    });
  } else {
    throw new Error('usage: modelpack-cli.ts push|pull [options] (see the comment at the top of this file)');
  }
}

main().catch((err: unknown) => {
  print({ event: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
});
