import { webhookStoreContract } from './webhook-store.js';

webhookStoreContract('sqlite');
