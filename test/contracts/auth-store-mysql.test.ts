import { authStoreContract } from './auth-store.js';

authStoreContract('mysql');
