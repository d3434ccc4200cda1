import type { Finding } from './match.js';
import { SEVERITIES, type Severity } from './severity.js';

/**
 * A client of the Harbor Pluggable Scanner API v1.2 (goharbor/pluggable-scanner-spec,
 * `scanner-adapter-openapi-v1.2.yaml`): an existing Trivy or Clair adapter scans Berth's
 * artifacts instead of the built-in matcher.
 *
 * One scan: `GET /api/v1/metadata` (does the adapter consume the artifact's media type, and
 * which report can it produce), `POST /api/v1/scan` with the registry URL, a short-lived
 * pull-only credential for the repository and the artifact → `202 {id}`, then
 * `GET /api/v1/scan/{id}/report` with `Accept` = the report type until it answers 200 (302 with
 * `Refresh-After` while the adapter works). Every request is bounded by what is left of the
 * scan's timeout, so an unreachable or stuck adapter ends as a failed scan, never a hung one.
 * The Harbor report's vulnerabilities become Berth findings, so the API, events and policies
 * see the same shape whichever scanner ran.
 */

export const METADATA_TYPES = [
  'application/vnd.scanner.adapter.metadata+json; version=1.1',
  'application/vnd.scanner.adapter.metadata+json; version=1.0',
];
export const SCAN_REQUEST_TYPE = 'application/vnd.scanner.adapter.scan.request+json; version=1.1';
/** The report types Berth reads, in the order it prefers them (both carry HarborVulnerabilityReport). */
export const REPORT_TYPES = [
  'application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0',
  'application/vnd.security.vulnerability.report; version=1.1',
];

export interface HarborScannerOptions {
  /** The adapter's base URL (its API is under `/api/v1`). */
  url: string;
  /** The Authorization header value Berth sends to the adapter (`Bearer …`, `Basic …`); never logged. */
  authorization?: string;
  /** The longest a whole scan (metadata, request, polling) may take. */
  timeoutMs: number;
  /** Wait between report polls when the adapter does not say (Refresh-After / Retry-After). */
  pollIntervalMs: number;
}

/**
 * Hands the adapter a credential for pulling the artifact from Berth: an Authorization header
 * value that lets its holder pull `repository` and nothing else, for about `lifetimeMs`; null
 * when the registry needs none (auth.mode none). Implemented by the composition root on auth's
 * token issuer. `requester` is who asked for the scan (opaque here): the credential never
 * grants more than they hold.
 */
export interface PullCredentials {
  pullOnly(repository: string, requester: unknown, lifetimeMs: number): Promise<string | null>;
}

/** What a remote scan gives back: the scanner's name (for `source`) and the findings. */
export interface RemoteScan {
  source: string;
  findings: Finding[];
  /** Distinct vulnerable packages the report names (the adapter does not say how many it read). */
  packages: number;
}

interface Capability {
  type?: string;
  consumes_mime_types?: string[];
  produces_mime_types?: string[];
}

interface HarborVulnerability {
  id?: unknown;
  package?: unknown;
  version?: unknown;
  fix_version?: unknown;
  severity?: unknown;
  description?: unknown;
  links?: unknown;
  preferred_cvss?: { score_v3?: unknown; score_v2?: unknown; vector_v3?: unknown; vector_v2?: unknown } | null;
  cwe_ids?: unknown;
  vendor_attributes?: unknown;
}

/** A failure to tell the user about: the scan record's `error`. */
export class ScannerError extends Error {}

const MAX_BODY = 64 * 1024 * 1024;

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The vulnerability capability's report type Berth prefers for an artifact of `mediaType`, or a ScannerError saying why there is none. */
export function chooseReportType(metadata: unknown, mediaType: string): string {
  const caps = (metadata as { capabilities?: unknown } | null)?.capabilities;
  if (!Array.isArray(caps)) throw new ScannerError('the adapter metadata has no capabilities');
  // A capability without `type` is a vulnerability one (spec: backward compatibility).
  const vuln = (caps as Capability[]).filter((c) => c && (c.type === undefined || c.type === 'vulnerability'));
  const consuming = vuln.filter((c) => Array.isArray(c.consumes_mime_types) && c.consumes_mime_types.includes(mediaType));
  if (consuming.length === 0)
    throw new ScannerError(
      `the adapter does not scan artifacts of media type ${mediaType} (it consumes: ${[...new Set(vuln.flatMap((c) => c.consumes_mime_types ?? []))].join(', ') || 'nothing'})`,
    );
  const produced = new Set(consuming.flatMap((c) => c.produces_mime_types ?? []).map(normaliseType));
  const chosen = REPORT_TYPES.find((t) => produced.has(normaliseType(t)));
  if (!chosen)
    throw new ScannerError(
      `the adapter produces no vulnerability report Berth reads (it produces: ${[...produced].join(', ') || 'nothing'}; Berth reads ${REPORT_TYPES.join(', ')})`,
    );
  return chosen;
}

/** Media types compared without case or blanks around parameters ("a; version=1.0" = "a;version=1.0"). */
function normaliseType(t: string): string {
  return t
    .toLowerCase()
    .replace(/\s*;\s*/g, '; ')
    .trim();
}

/** One Harbor VulnerabilityItem as a Berth finding. */
export function findingOf(item: HarborVulnerability, scanner: string): Finding | null {
  const id = str(item.id);
  const pkg = str(item.package);
  if (!id || !pkg) return null;
  const severity: Severity = (SEVERITIES as readonly string[]).includes(item.severity as string) ? (item.severity as Severity) : 'Unknown';
  const cvss = item.preferred_cvss ?? null;
  const v3 = cvss ? str(cvss.vector_v3) : null;
  const v2 = cvss ? str(cvss.vector_v2) : null;
  const s3 = cvss ? num(cvss.score_v3) : null;
  const s2 = cvss ? num(cvss.score_v2) : null;
  const score =
    v3 !== null && s3 !== null
      ? { type: 'CVSS_V3', vector: v3, score: s3 }
      : v2 !== null && s2 !== null
        ? { type: 'CVSS_V2', vector: v2, score: s2 }
        : null;
  const vendor =
    item.vendor_attributes && typeof item.vendor_attributes === 'object' && !Array.isArray(item.vendor_attributes)
      ? (item.vendor_attributes as Record<string, unknown>)
      : null;
  const description = str(item.description);
  return {
    id,
    aliases: [],
    summary: description,
    package: pkg,
    // Harbor's report names no ecosystem: the scanner is said instead.
    ecosystem: scanner,
    installed: str(item.version) ?? '',
    fixed: str(item.fix_version),
    severity,
    cvss: score,
    severitySource: 'scanner',
    links: Array.isArray(item.links) ? item.links.filter((l): l is string => typeof l === 'string') : [],
    ...(Array.isArray(item.cwe_ids) ? { cweIds: item.cwe_ids.filter((c): c is string => typeof c === 'string') } : {}),
    ...(vendor ? { vendorAttributes: vendor } : {}),
  };
}

/** A HarborVulnerabilityReport as findings, most severe first (as the built-in matcher orders them). */
export function findingsOf(report: unknown, scanner: string): Finding[] {
  const items = (report as { vulnerabilities?: unknown } | null)?.vulnerabilities;
  if (items !== undefined && items !== null && !Array.isArray(items))
    throw new ScannerError('the adapter report is not a Harbor vulnerability report (vulnerabilities is not a list)');
  const findings = ((items ?? []) as HarborVulnerability[]).map((i) => findingOf(i, scanner)).filter((f): f is Finding => f !== null);
  const rank = (s: Severity) => SEVERITIES.indexOf(s);
  return findings.sort(
    (a, b) => rank(b.severity) - rank(a.severity) || cmp(a.package, b.package) || cmp(a.installed, b.installed) || cmp(a.id, b.id),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Seconds from Refresh-After (the spec's header) or Retry-After (seconds), else null. */
function advisedDelayMs(res: Response): number | null {
  for (const name of ['refresh-after', 'retry-after']) {
    const v = res.headers.get(name);
    if (v && /^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  }
  return null;
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string' && message !== '') return message.slice(0, 500);
  } catch {
    // not the spec's error JSON
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200) || res.statusText;
}

export class HarborScanner {
  private credentials: PullCredentials | null = null;
  private registryUrl: string | null = null;
  private readonly base: string;

  constructor(private readonly options: HarborScannerOptions) {
    this.base = `${options.url.replace(/\/+$/, '')}/api/v1`;
  }

  /** Where the adapter pulls from and how Berth makes its credentials; the server attaches them once auth is open and it listens. */
  attach(credentials: PullCredentials, registryUrl: string): void {
    this.credentials = credentials;
    this.registryUrl = registryUrl.replace(/\/+$/, '');
  }

  /** Scans `repository@digest` (a manifest of `mediaType`) with the adapter; throws ScannerError with a message for the user. */
  async scan(repository: string, digest: string, mediaType: string, requester: unknown): Promise<RemoteScan> {
    if (!this.credentials || !this.registryUrl)
      throw new ScannerError(
        'the Harbor scanner adapter is used by the server only (berth serve): this process cannot hand it registry credentials',
      );
    const deadline = Date.now() + this.options.timeoutMs;
    const metadata = await this.json(
      await this.call('GET', '/metadata', deadline, { accept: METADATA_TYPES.join(', ') }, 'metadata'),
      'metadata',
    );
    const reportType = chooseReportType(metadata, mediaType);
    const scannerInfo = (metadata as { scanner?: { name?: unknown; version?: unknown } }).scanner;
    const name = str(scannerInfo?.name) ?? 'adapter';
    const source = `harbor:${name}${str(scannerInfo?.version) ? ` ${str(scannerInfo?.version)}` : ''}`.slice(0, 64);

    const authorization = await this.credentials.pullOnly(repository, requester, this.options.timeoutMs);
    const request = {
      registry: { url: this.registryUrl, ...(authorization ? { authorization } : {}) },
      artifact: { repository, digest, mime_type: mediaType },
      enabled_capabilities: [{ type: 'vulnerability', produces_mime_types: [reportType] }],
    };
    const accepted = await this.call(
      'POST',
      '/scan',
      deadline,
      { 'content-type': SCAN_REQUEST_TYPE, accept: 'application/vnd.scanner.adapter.scan.response+json; version=1.0, application/json' },
      'scan request',
      JSON.stringify(request),
    );
    if (accepted.status !== 202 && accepted.status !== 200)
      throw new ScannerError(`the adapter refused the scan request: ${accepted.status} ${await errorText(accepted)}`);
    const id = str(((await this.json(accepted, 'scan response')) as { id?: unknown } | null)?.id);
    if (!id) throw new ScannerError('the adapter accepted the scan but answered no id');

    for (;;) {
      const res = await this.call(
        'GET',
        `/scan/${encodeURIComponent(id)}/report`,
        deadline,
        { accept: reportType },
        'report',
        undefined,
        'manual',
      );
      if (res.status === 200) {
        const findings = findingsOf(await this.json(res, 'report'), name);
        return { source, findings, packages: new Set(findings.map((f) => `${f.package}@${f.installed}`)).size };
      }
      if (res.status !== 302) throw new ScannerError(`the adapter failed the scan ${id}: ${res.status} ${await errorText(res)}`);
      await res.body?.cancel();
      const wait = Math.max(advisedDelayMs(res) ?? this.options.pollIntervalMs, 50);
      if (Date.now() + wait >= deadline)
        throw new ScannerError(`the adapter did not finish scan ${id} within ${this.options.timeoutMs / 1000}s (scanning.scanner.timeout)`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** One request within what is left of the deadline; a refused connection, DNS failure or timeout becomes a ScannerError naming the adapter. */
  private async call(
    method: string,
    path: string,
    deadline: number,
    headers: Record<string, string>,
    what: string,
    body?: string,
    redirect: RequestRedirect = 'follow',
  ): Promise<Response> {
    const left = deadline - Date.now();
    if (left <= 0) throw new ScannerError(`the adapter did not answer within ${this.options.timeoutMs / 1000}s (scanning.scanner.timeout)`);
    try {
      const res = await fetch(`${this.base}${path}`, {
        method,
        headers: { ...headers, ...(this.options.authorization ? { authorization: this.options.authorization } : {}) },
        body,
        redirect,
        signal: AbortSignal.timeout(left),
      });
      if (method === 'GET' && path === '/metadata' && res.status !== 200)
        throw new ScannerError(
          `the adapter at ${this.options.url} answered ${res.status} to GET /api/v1/metadata: ${await errorText(res)}`,
        );
      return res;
    } catch (err) {
      if (err instanceof ScannerError) throw err;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const reason =
        e.name === 'TimeoutError' || e.name === 'AbortError'
          ? `no answer within ${this.options.timeoutMs / 1000}s (scanning.scanner.timeout)`
          : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new ScannerError(`the scanner adapter at ${this.options.url} is unreachable (${what}): ${reason}`);
    }
  }

  private async json(res: Response, what: string): Promise<unknown> {
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_BODY) throw new ScannerError(`the adapter's ${what} is larger than ${MAX_BODY} bytes`);
    const text = await res.text();
    if (text.length > MAX_BODY) throw new ScannerError(`the adapter's ${what} is larger than ${MAX_BODY} bytes`);
    try {
      return JSON.parse(text);
    } catch {
      throw new ScannerError(`the adapter's ${what} is not JSON`);
    }
  }
}
