import { signatureStoreContract } from './signature-store.js';

signatureStoreContract('postgres');
