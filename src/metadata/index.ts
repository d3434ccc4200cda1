import type { BerthConfig } from '../config/schema.js';
import type { MetadataStore } from '../core/ports.js';
import { openSqliteMetadata } from './sqlite.js';

/** Opens (and migrates) the metadata store the configuration names. */
export async function openMetadataStore(config: BerthConfig): Promise<MetadataStore> {
  switch (config.metadata.driver) {
    case 'sqlite':
      return openSqliteMetadata(config.metadata.path!);
    case 'postgres':
      throw new Error('metadata.driver postgres is not available in this build yet');
  }
}
