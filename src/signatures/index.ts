export { signaturePolicy, TrustCache, SIGNATURE_POLICY, type Violation, type ViolationRecorder } from './policy.js';
export { SignatureService, type SignatureAuditWriter, type SignatureAuditEntry } from './service.js';
export { verifyArtifact, type ArtifactReader, type ArtifactSignatures, type SignatureReport } from './discover.js';
export type { SignatureStore, TrustMode } from './ports.js';
export { TRUST_MODES } from './ports.js';
export { coreArtifactReader, violationRecorder } from './reader.js';
