import type cvssCalculatorModule from 'ae-cvss-calculator';
import { lazyPackage } from '../core/lazy.js';

// A CommonJS bundle whose named exports Node's ESM loader cannot see: take them from the default export.
const cvssCalculator = lazyPackage<typeof cvssCalculatorModule>('ae-cvss-calculator');
type Calculators = typeof cvssCalculatorModule;
type Calculator = InstanceType<Calculators['Cvss2'] | Calculators['Cvss3P0'] | Calculators['Cvss3P1'] | Calculators['Cvss4P0']>;
import type { OsvAffected, OsvRecord, OsvSeverity } from './osv.js';

/** Severity levels, as Harbor's scanner API names them (lowest first). */
export const SEVERITIES = ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The rank of a severity (Unknown 0 … Critical 5), for thresholds and sorting. */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export interface CvssScore {
  /** OSV severity type: CVSS_V2, CVSS_V3 or CVSS_V4. */
  type: string;
  vector: string;
  /** The base score the vector gives, computed (never taken from a database field). */
  score: number;
}

export interface RatedSeverity {
  severity: Severity;
  /** The CVSS vector it came from, when it came from one. */
  cvss: CvssScore | null;
  /** Where it came from: a CVSS vector, a database's own rating, or nowhere. */
  source: 'cvss' | 'database' | 'none';
}

/**
 * The base score of an OSV severity entry's vector, computed with ae-cvss-calculator; null
 * when the type is not CVSS or the vector is malformed or incomplete.
 */
export function cvssBaseScore(entry: OsvSeverity): number | null {
  const vector = entry.score.trim();
  try {
    const { Cvss2, Cvss3P0, Cvss3P1, Cvss4P0 } = cvssCalculator();
    let calculator: Calculator;
    if (entry.type === 'CVSS_V3' && vector.startsWith('CVSS:3.1/')) calculator = new Cvss3P1(vector);
    else if (entry.type === 'CVSS_V3' && vector.startsWith('CVSS:3.0/')) calculator = new Cvss3P0(vector);
    else if (entry.type === 'CVSS_V4' && vector.startsWith('CVSS:4.0/')) calculator = new Cvss4P0(vector);
    else if (entry.type === 'CVSS_V2' && !vector.startsWith('CVSS:')) calculator = new Cvss2(vector);
    else return null;
    const base = calculator.calculateScores().base;
    return typeof base === 'number' && Number.isFinite(base) ? base : null;
  } catch {
    return null;
  }
}

/** CVSS qualitative rating (v3/v4: 9.0 Critical, 7.0 High, 4.0 Medium, 0.1 Low; v2 has no Critical). */
export function ratingOfScore(score: number, type: string): Severity {
  if (score >= 9 && type !== 'CVSS_V2') return 'Critical';
  if (score >= 7) return 'High';
  if (score >= 4) return 'Medium';
  if (score > 0) return 'Low';
  return 'Negligible';
}

/** A database's own rating word (GHSA's MODERATE, Debian's urgency, Ubuntu's priority…) as a level. */
export function ratingOfText(text: unknown): Severity | null {
  if (typeof text !== 'string') return null;
  const word = text.trim().toLowerCase();
  if (word === 'critical') return 'Critical';
  if (word === 'high' || word === 'important') return 'High';
  if (word === 'moderate' || word === 'medium') return 'Medium';
  if (word === 'low') return 'Low';
  if (word === 'negligible' || word === 'unimportant') return 'Negligible';
  return null;
}

const PREFERRED = ['CVSS_V3', 'CVSS_V4', 'CVSS_V2'];

/**
 * The severity of an advisory for one affected entry: the base score of a CVSS vector (v3
 * preferred, then v4, then v2; the entry's own vectors before the record's), else the rating
 * a database states (the entry's ecosystem_specific or database_specific `severity` or
 * `urgency`, Ubuntu's severity entry, the record's database_specific `severity`), else Unknown.
 */
export function rateAdvisory(record: OsvRecord, affected: OsvAffected | null): RatedSeverity {
  const entries = [...(affected?.severity ?? []), ...(record.severity ?? [])];
  for (const type of PREFERRED) {
    for (const entry of entries.filter((e) => e.type === type)) {
      const score = cvssBaseScore(entry);
      if (score !== null)
        return { severity: ratingOfScore(score, type), cvss: { type, vector: entry.score.trim(), score }, source: 'cvss' };
    }
  }
  const stated = [
    affected?.ecosystem_specific?.severity,
    affected?.database_specific?.severity,
    affected?.ecosystem_specific?.urgency,
    ...entries.filter((e) => e.type === 'Ubuntu').map((e) => e.score),
    record.database_specific?.severity,
  ];
  for (const text of stated) {
    const severity = ratingOfText(text);
    if (severity) return { severity, cvss: null, source: 'database' };
  }
  return { severity: 'Unknown', cvss: null, source: 'none' };
}
