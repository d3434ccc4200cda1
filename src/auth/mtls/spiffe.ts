/**
 * SPIFFE IDs as the SPIFFE ID and X.509-SVID specifications define them:
 * `spiffe://<trust domain>/<path>`; the trust domain is lowercase letters, digits, '.', '-'
 * and '_'; each path segment is letters, digits, '.', '-' and '_' and neither empty, '.' nor
 * '..'; no port, user info, query or fragment; at most 2048 bytes. An X.509-SVID carries
 * exactly one URI SAN, and that is its SPIFFE ID.
 */
export interface SpiffeId {
  /** The whole ID, `spiffe://example.org/ns/ci/sa/builder`. */
  id: string;
  trustDomain: string;
  /** `/ns/ci/sa/builder` ('' for the trust domain's own ID). */
  path: string;
}

const MAX_ID_BYTES = 2048;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parses a SPIFFE ID, or explains why `value` is not one. */
export function parseSpiffeId(value: string): SpiffeId | { error: string } {
  if (Buffer.byteLength(value) > MAX_ID_BYTES) return { error: 'longer than 2048 bytes' };
  if (!value.startsWith('spiffe://')) return { error: 'the scheme is not spiffe' };
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain === '') return { error: 'the trust domain is empty' };
  if (!TRUST_DOMAIN.test(trustDomain))
    return { error: 'the trust domain may hold only lowercase letters, digits, ".", "-" and "_" (no port or user info)' };
  if (path !== '') {
    for (const segment of path.slice(1).split('/')) {
      if (segment === '' || segment === '.' || segment === '..') return { error: 'the path has an empty, "." or ".." segment' };
      if (!SEGMENT.test(segment))
        return { error: 'a path segment holds a character other than letters, digits, ".", "-" and "_" (no query or fragment)' };
    }
  }
  return { id: value, trustDomain, path };
}

/**
 * The URI SANs of a certificate, from Node's `subjectaltname` string (`DNS:a, URI:spiffe://…`;
 * a value holding a comma or quote is JSON-quoted by Node).
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  const entry = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const m of subjectAltName.matchAll(entry)) {
    if (m[1] !== 'URI') continue;
    const raw = m[2]!;
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}

/**
 * The SPIFFE ID of a client certificate: null when it carries no spiffe:// URI SAN (not an
 * SVID), an error when it is a malformed SVID (more than one URI SAN, an invalid ID).
 */
export function svidId(subjectAltName: string | undefined): SpiffeId | { error: string } | null {
  const uris = uriSans(subjectAltName);
  if (!uris.some((u) => u.toLowerCase().startsWith('spiffe:'))) return null;
  if (uris.length !== 1) return { error: `an X.509-SVID carries exactly one URI SAN; this certificate has ${uris.length}` };
  return parseSpiffeId(uris[0]!);
}
