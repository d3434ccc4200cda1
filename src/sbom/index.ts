export { coreArtifactStore, type ArtifactStore } from './artifacts.js';
export { SBOM_FORMATS, type SbomFormat } from './formats.js';
export type { MatchablePackage } from './model.js';
export type { RpmDbReader } from './ports.js';
export { SbomService, type GenerateResult, type SbomRef } from './service.js';
