const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '—';
  const [algorithm, hex = ''] = digest.split(':');
  return `${algorithm}:${hex.slice(0, 12)}`;
}

/** "3 min ago", "2 days ago"; the exact time is in the title attribute of <Time>. */
export function ago(iso: string | number | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return 'never';
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  const steps: [number, string][] = [
    [60, 'min'],
    [3600, 'h'],
    [86400, 'day'],
    [2592000, 'month'],
    [31536000, 'year'],
  ];
  let label = 'min';
  let size = 60;
  for (const [limit, name] of steps) if (s >= limit) [size, label] = [limit, name];
  const count = Math.round(s / size);
  return `${count} ${label}${count > 1 && label !== 'min' && label !== 'h' ? 's' : ''} ago`;
}

export function isoTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '';
  return new Date(iso)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}
