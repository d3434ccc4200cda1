/**
 * Alpine package version ordering, as apk-tools 3 orders them (its src/version.c, written
 * anew here from the rules; tested against apk-tools' own test vectors in
 * test/scanning/fixtures/apk-version.data):
 *
 *   digit{.digit}…{letter}{_suffix{number}}…{~hash}{-r number}
 *
 * Tokens compare in order while both versions have the same kind of token:
 * - the first number and the numbers of suffixes and revisions compare numerically;
 * - a later `.number` compares numerically, unless either side starts with `0`: then as a
 *   string (`1.02 < 1.1`, Gentoo's rule for leading zeros);
 * - a letter compares by its character (`1.0a < 1.0b`);
 * - suffixes by rank: `_alpha < _beta < _pre < _rc` < (no suffix) < `_cvs < _svn < _git < _hg < _p`;
 * - a commit hash `~hex` as a string.
 * When one version runs out of tokens (or has a different kind of token) first, a pre-release
 * suffix on the other one makes that one smaller (`1.0_rc1 < 1.0`); otherwise the kinds
 * decide, in the order number < letter < suffix < suffix number < hash < revision < end:
 * the version with the "earlier" kind is greater (`1.0.1 > 1.0a > 1.0`, `1.0-r1 > 1.0`).
 */

const enum Token {
  InitialDigit = 0,
  Digit = 1,
  Letter = 2,
  Suffix = 3,
  SuffixNumber = 4,
  CommitHash = 5,
  Revision = 6,
  End = 7,
  Invalid = 8,
}

/** Suffix ranks: pre-releases below NONE (a release), post-releases above. */
const SUFFIXES: Record<string, number> = { alpha: 0, beta: 1, pre: 2, rc: 3, cvs: 5, svn: 6, git: 7, hg: 8, p: 9 };
const SUFFIX_NONE = 4;

interface TokenState {
  kind: Token;
  /** The token's text: digits, a letter, a suffix name or a hash. */
  text: string;
  suffix: number;
}

/** A tokenizer over one version string. */
class Tokens {
  private pos = 0;
  readonly state: TokenState = { kind: Token.InitialDigit, text: '', suffix: SUFFIX_NONE };

  constructor(private readonly s: string) {
    this.digits(Token.InitialDigit);
  }

  private run(test: (c: string) => boolean): string {
    const start = this.pos;
    while (this.pos < this.s.length && test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private digits(kind: Token): void {
    this.state.text = this.run(isDigit);
    this.state.kind = this.state.text === '' ? Token.Invalid : kind;
  }

  private invalid(): void {
    this.state.kind = Token.Invalid;
  }

  next(): void {
    const t = this.state;
    if (this.pos >= this.s.length) {
      t.kind = Token.End;
      return;
    }
    const c = this.s[this.pos]!;
    if (c >= 'a' && c <= 'z') {
      if (t.kind > Token.Digit) return this.invalid();
      t.text = c;
      t.kind = Token.Letter;
      this.pos++;
      return;
    }
    if (c === '.' || isDigit(c)) {
      if (c === '.') {
        if (t.kind > Token.Digit) return this.invalid();
        this.pos++;
      }
      if (t.kind === Token.InitialDigit || t.kind === Token.Digit) return this.digits(Token.Digit);
      if (t.kind === Token.Suffix) return this.digits(Token.SuffixNumber);
      return this.invalid();
    }
    if (c === '_') {
      if (t.kind > Token.SuffixNumber) return this.invalid();
      this.pos++;
      t.text = this.run((ch) => ch >= 'a' && ch <= 'z');
      const rank = SUFFIXES[t.text];
      if (rank === undefined) return this.invalid();
      t.suffix = rank;
      t.kind = Token.Suffix;
      return;
    }
    if (c === '~') {
      if (t.kind >= Token.CommitHash) return this.invalid();
      this.pos++;
      t.text = this.run((ch) => /[0-9a-f]/.test(ch));
      if (t.text === '') return this.invalid();
      t.kind = Token.CommitHash;
      return;
    }
    if (c === '-') {
      if (t.kind >= Token.Revision || this.s[this.pos + 1] !== 'r') return this.invalid();
      this.pos += 2;
      return this.digits(Token.Revision);
    }
    this.invalid();
  }
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** Numbers of any length compared exactly (no float rounding): leading zeros dropped, then length, then text. */
function compareNumbers(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Byte-wise string order, then length (apk's blob sort). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareTokens(a: TokenState, b: TokenState): number {
  switch (a.kind) {
    case Token.Digit:
      if (a.text.startsWith('0') || b.text.startsWith('0')) return compareStrings(a.text, b.text);
      return compareNumbers(a.text, b.text);
    case Token.InitialDigit:
    case Token.SuffixNumber:
    case Token.Revision:
      return compareNumbers(a.text, b.text);
    case Token.Letter:
      return compareStrings(a.text, b.text);
    case Token.Suffix:
      return Math.sign(a.suffix - b.suffix);
    default:
      return compareStrings(a.text, b.text);
  }
}

/** Compares two Alpine versions: -1, 0 or 1 (invalid versions compare up to their first invalid token, as apk does). */
export function compareApkVersions(a: string, b: string): number {
  const ta = new Tokens(a);
  const tb = new Tokens(b);
  while (ta.state.kind === tb.state.kind && ta.state.kind < Token.End) {
    const r = compareTokens(ta.state, tb.state);
    if (r !== 0) return r;
    ta.next();
    tb.next();
  }
  const ka = ta.state.kind;
  const kb = tb.state.kind;
  if (ka === kb) return 0;
  if (ka === Token.Suffix && ta.state.suffix < SUFFIX_NONE) return -1;
  if (kb === Token.Suffix && tb.state.suffix < SUFFIX_NONE) return 1;
  return ka > kb ? -1 : 1;
}

/** True when apk-tools accepts `version` (`apk version --check`). */
export function isValidApkVersion(version: string): boolean {
  const t = new Tokens(version);
  while (t.state.kind < Token.End) t.next();
  return t.state.kind === Token.End;
}
