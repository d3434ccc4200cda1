/**
 * Debian package version ordering, as dpkg orders them (`dpkg --compare-versions`, dpkg's
 * lib/dpkg/version.c): `[epoch:]upstream[-revision]`.
 *
 * - The epoch is the unsigned integer before the first `:` (0 when absent).
 * - The revision is what follows the LAST `-` (empty when absent, which equals `0`).
 * - Epochs compare numerically; upstream parts, then revisions, compare with dpkg's
 *   `verrevcmp`: the string alternates a run of non-digits and a run of digits. Non-digit runs
 *   compare character by character with the weight: `~` below everything (even the end of the
 *   string), then the end of the string / a digit, then letters (ASCII order), then every other
 *   character (ASCII + 256). Digit runs compare as numbers (leading zeros ignored).
 *
 * So `1.0~rc1 < 1.0 < 1.0a < 1.0+b1 < 1.0.1`, `1:0.1 > 9.9`, `1.0 = 1.0-0 = 0:1.0`.
 * Property-tested against this machine's dpkg (test/scanning/versions.test.ts).
 */

export interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/**
 * Splits a Debian version; null when dpkg would refuse it (empty, embedded blanks, an epoch
 * that is not a number, an empty upstream part or revision). dpkg only warns about an upstream
 * part that does not start with a digit or holds characters outside `[A-Za-z0-9.+~:-]`, and
 * still compares such versions: so does this.
 */
export function parseDebianVersion(input: string): DebianVersion | null {
  const text = input.trim();
  if (text === '' || /\s/.test(text)) return null;
  let epoch = 0;
  let rest = text;
  const colon = text.indexOf(':');
  if (colon >= 0) {
    const digits = text.slice(0, colon);
    if (!/^[0-9]+$/.test(digits)) return null;
    epoch = Number(digits);
    if (!Number.isSafeInteger(epoch) || epoch > 2147483647) return null;
    rest = text.slice(colon + 1);
  }
  if (rest === '') return null;
  const hyphen = rest.lastIndexOf('-');
  if (hyphen < 0) return { epoch, upstream: rest, revision: '' };
  const revision = rest.slice(hyphen + 1);
  const upstream = rest.slice(0, hyphen);
  if (revision === '' || upstream === '') return null;
  return { epoch, upstream, revision };
}

const CODE_0 = 48;
const CODE_9 = 57;
const TILDE = 126;

function isDigit(code: number): boolean {
  return code >= CODE_0 && code <= CODE_9;
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** The weight of one character of a non-digit run (NaN, past the end, weighs as a digit: 0). */
function weight(code: number): number {
  if (Number.isNaN(code) || isDigit(code)) return 0;
  if (isLetter(code)) return code;
  if (code === TILDE) return -1;
  return code + 256;
}

/** dpkg's verrevcmp: negative, 0 or positive as `a` sorts before, with or after `b`. */
export function compareVersionPart(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // The non-digit run, character by character.
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const wa = weight(a.charCodeAt(i));
      const wb = weight(b.charCodeAt(j));
      if (wa !== wb) return wa - wb;
      i++;
      j++;
    }
    // The digit run, as a number: skip leading zeros, then the longer run is larger, else the first differing digit decides.
    while (a.charCodeAt(i) === CODE_0) i++;
    while (b.charCodeAt(j) === CODE_0) j++;
    let firstDiff = 0;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/**
 * Compares two Debian versions: -1, 0 or 1. A version dpkg would refuse is compared as if
 * it were all upstream part (epoch 0, no revision), so a bad string in a database still sorts
 * somewhere instead of failing the whole scan; `parseDebianVersion` tells which they are.
 */
export function compareDebianVersions(a: string, b: string): number {
  const va = parseDebianVersion(a) ?? { epoch: 0, upstream: a.trim(), revision: '' };
  const vb = parseDebianVersion(b) ?? { epoch: 0, upstream: b.trim(), revision: '' };
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  const upstream = compareVersionPart(va.upstream, vb.upstream);
  if (upstream !== 0) return Math.sign(upstream);
  return Math.sign(compareVersionPart(va.revision, vb.revision));
}
