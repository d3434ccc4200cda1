import { vulnDbStoreContract } from './vulndb-store-contract.js';

vulnDbStoreContract('sqlite');
