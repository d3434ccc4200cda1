import { identityBindingsContract } from './identity-bindings.js';

identityBindingsContract('mysql');
