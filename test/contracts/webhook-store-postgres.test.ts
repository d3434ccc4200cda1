import { webhookStoreContract } from './webhook-store.js';

webhookStoreContract('postgres');
