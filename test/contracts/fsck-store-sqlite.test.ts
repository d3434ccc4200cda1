import { fsckStoreContract } from './fsck-store.js';

fsckStoreContract('sqlite');
