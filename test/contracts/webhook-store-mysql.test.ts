import { webhookStoreContract } from './webhook-store.js';

webhookStoreContract('mysql');
