import { identityBindingsContract } from './identity-bindings.js';

identityBindingsContract('postgres');
