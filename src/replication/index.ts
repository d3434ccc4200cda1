export {
  CopyEngine,
  MemoryCheckpoints,
  CopyRefused,
  emptyStats,
  addStats,
  type CopyOptions,
  type CopyResult,
  type CopySide,
  type CopyStats,
  type RegistryAccess,
  type UploadCheckpoints,
} from './engine.js';
export { parseManifest, rewriteRepository, type ManifestGraph } from './graph.js';
export { LocalRegistry } from './local.js';
export { ReplicationService, SIGNATURE_TYPES, type ReplicationDeps } from './service.js';
export type {
  Direction,
  Execution,
  ExecutionScope,
  ExecutionStatus,
  ReplicationPolicy,
  ReplicationPolicyInput,
  ReplicationStore,
  Task,
  TaskStatus,
  TriggerKind,
} from './ports.js';
