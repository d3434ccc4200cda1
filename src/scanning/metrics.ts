import type { MetricsRegistry } from '../core/metrics.js';
import type { SupplyChainStore, VulnDbStore } from './ports.js';
import { importsOf } from './supply-chain.js';

/**
 * The vulnerability database's freshness and the supply-chain queue, through core's metrics
 * seam. Every value is read from small tables when the registry refreshes its gauges (cached for
 * metrics.refresh): a scrape never scans anything. Before the first complete import the
 * database series have no sample, so a registry that does not scan is never alerted.
 */
export function supplyChainMetrics(
  metrics: MetricsRegistry,
  vulndb: VulnDbStore,
  store: SupplyChainStore,
  clock: () => number = Date.now,
): void {
  const lastImport = async () => importsOf(await vulndb.imports(50)).last?.finishedAt ?? null;
  metrics.gauge({
    name: 'berth_vulndb_last_import_timestamp_seconds',
    help: 'When the last complete import of the offline vulnerability database finished (Unix seconds; no sample before the first)',
    collect: async () => {
      const at = await lastImport();
      return at === null ? [] : [{ labels: {}, value: at / 1000 }];
    },
  });
  metrics.gauge({
    name: 'berth_vulndb_age_seconds',
    help: 'Age of the offline vulnerability database: seconds since its last complete import finished (no sample before the first)',
    collect: async () => {
      const at = await lastImport();
      return at === null ? [] : [{ labels: {}, value: Math.max(0, clock() - at) / 1000 }];
    },
  });
  metrics.gauge<'state'>({
    name: 'berth_supply_chain_queue_items',
    help: 'Artifacts queued for an SBOM or a scan on push or by a backfill: pending, or failed (given up after their attempts)',
    labels: ['state'],
    collect: async () => {
      const counts = await store.queueCounts();
      return [
        { labels: { state: 'pending' }, value: counts.pending },
        { labels: { state: 'failed' }, value: counts.failed },
      ];
    },
  });
  metrics.gauge({
    name: 'berth_vulndb_rescan_remaining',
    help: 'Artifacts the running rescan (after a database import that changed it) has still to scan (0 when none runs)',
    collect: async () => {
      const rescan = await store.rescan();
      return [{ labels: {}, value: rescan && rescan.state === 'running' ? Math.max(0, rescan.total - rescan.scanned) : 0 }];
    },
  });
}
