import { signatureStoreContract } from './signature-store.js';

signatureStoreContract('mysql');
