import { fsckStoreContract } from './fsck-store.js';

fsckStoreContract('postgres');
