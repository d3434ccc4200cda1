import { gcStoreContract } from './gc-store.js';

gcStoreContract('sqlite');
