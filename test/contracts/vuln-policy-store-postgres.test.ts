import { vulnPolicyStoreContract } from './vuln-policy-store.js';

vulnPolicyStoreContract('postgres');
