import type { Command } from 'commander';
import type { BerthConfig } from '../config/schema.js';
import type { GcCounts, GcReport } from '../gc/report.js';
import { humanBytes } from '../quotas/bytes.js';

/** Exit codes: 0 done, 1 the run stopped early, 2 usage or configuration error, 75 another collector is running (try later). */
export const GC_EXIT = { done: 0, incomplete: 1, usage: 2, busy: 75 } as const;

interface GcFlags {
  dryRun?: boolean;
  json?: boolean;
}

/** Registers `berth gc [--dry-run] [--json]`. */
export function registerGcCommand(program: Command, configFile: () => string | undefined): void {
  program
    .command('gc')
    .description('collect garbage now: untagged manifests, unreferenced blobs, abandoned uploads (safe while the server runs)')
    .option('--dry-run', 'report what would be deleted and the bytes it would free, delete nothing')
    .option('--json', 'print the full report as JSON')
    .action(async (flags: GcFlags) => {
      process.exitCode = await gcCommand(configFile(), flags);
    });
}

async function gcCommand(file: string | undefined, flags: GcFlags): Promise<number> {
  const { ConfigError, loadConfig } = await import('../config/load.js');
  let config: BerthConfig;
  try {
    const loaded = loadConfig({ file });
    for (const warning of loaded.warnings) process.stderr.write(`berth: warning: ${warning}\n`);
    config = loaded.config;
  } catch (err) {
    process.stderr.write(`berth gc: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return GC_EXIT.usage;
  }
  const { report, uploadsPurged } = await collectStores(config, flags.dryRun === true, progressPrinter());
  process.stdout.write(flags.json ? `${JSON.stringify({ ...report, uploadsPurged }, null, 2)}\n` : summary(report, uploadsPurged));
  if (!report.ran) return GC_EXIT.busy;
  return report.completed ? GC_EXIT.done : GC_EXIT.incomplete;
}

/** Opens the stores a configuration names, collects (then purges abandoned uploads), closes them. */
export async function collectStores(
  config: BerthConfig,
  dryRun: boolean,
  onProgress: (counts: GcCounts) => void,
): Promise<{ report: GcReport; uploadsPurged: number }> {
  // Imported when a collection runs, so that `berth --help` does not load the stores.
  const [{ default: pino }, { durationMs }, { purgeUploads }, { compose }, { openStores }] = await Promise.all([
    import('pino'),
    import('../config/schema.js'),
    import('../jobs/upload-purge.js'),
    import('../compose.js'),
    import('../stores.js'),
  ]);
  const stores = await openStores(config);
  try {
    const logger = pino({ level: 'warn' }, pino.destination(2));
    // The same wiring as the server: the collector first delivers pending events to its review queue.
    const { gc, registry } = compose(config, stores, logger);
    const report = await gc.collector.run({ dryRun, onProgress });
    const purging = config.storage.maintenance.uploadpurging;
    let uploadsPurged = 0;
    if (!dryRun && purging.enabled) uploadsPurged = await purgeUploads(registry.uploads, durationMs(purging.age), stores.leases);
    return { report, uploadsPurged };
  } finally {
    await stores.close();
  }
}

/** One rewritten progress line on a terminal; one plain line per batch otherwise (logs, CI). */
function progressPrinter(): (counts: GcCounts) => void {
  const tty = process.stderr.isTTY === true;
  return (c) => {
    const line = `gc: reviewed ${c.reviewed}, deleted ${c.manifests} manifests, ${c.links} links, ${c.blobs} blobs, ${humanBytes(c.bytesFreed)} freed`;
    process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  };
}

function summary(report: GcReport, uploadsPurged: number): string {
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (!report.ran) return `berth gc: another collector is running (${report.heldBy ?? 'unknown holder'}); nothing done\n`;
  const c = report.counts;
  const verb = report.dryRun ? 'would delete' : 'deleted';
  const lines = [
    `gc ${report.dryRun ? '(dry run) ' : ''}${report.completed ? 'finished' : 'stopped early'} in ${report.durationMs} ms: reviewed ${c.reviewed} candidates past the grace period (${c.kept} still in use${c.postponed > 0 ? `, ${c.postponed} changed since and postponed` : ''})`,
    `${verb} ${c.manifests} manifests, ${c.links} blob links, ${c.blobs} blobs: ${humanBytes(c.bytesFreed)} (${c.bytesFreed} bytes) ${report.dryRun ? 'would be ' : ''}freed`,
  ];
  const waiting = waitingLine(report);
  if (waiting) lines.push(waiting);
  if (c.resumedByteDeletions > 0) lines.push(`finished ${c.resumedByteDeletions} byte deletions left by an interrupted run`);
  if (uploadsPurged > 0) lines.push(`purged ${uploadsPurged} abandoned upload sessions`);
  if (c.errors > 0 || report.error) lines.push(`${c.errors} errors${report.error ? `: ${report.error}` : ''} (the next run retries)`);
  return `${lines.join('\n')}\n`;
}

/**
 * Candidates inside the grace period are not reviewed at all, so "reviewed 0" alone reads as
 * "nothing to do" while the queue holds work: say how much waits and from when it can go.
 */
function waitingLine(report: GcReport): string | null {
  const w = report.waiting;
  if (!w || w.candidates === 0 || !w.firstCollectableAt || !w.lastCollectableAt) return null;
  const grace = formatDuration(report.gracePeriodMs);
  const when = (iso: string) => `${iso.replace(/\.\d+Z$/, 'Z')} (in ${formatDuration(Date.parse(iso) - Date.now())})`;
  const [first, last] = [when(w.firstCollectableAt), when(w.lastCollectableAt)];
  const span = first === last ? `collectable from ${first}` : `the first collectable from ${first}, all by ${last}`;
  return `${w.candidates} ${w.candidates === 1 ? 'candidate is' : 'candidates are'} waiting out the ${grace} grace period (gc.graceperiod): ${span}; a run after that deletes what is still unused`;
}

/** 1 h 5 min, 59 min, 30 s. */
function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (d > 0) return `${d} d${h % 24 ? ` ${h % 24} h` : ''}`;
  return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
}
