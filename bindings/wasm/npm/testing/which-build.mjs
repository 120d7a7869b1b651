// Prints which WebAssembly module the package resolved to in this runtime ('full' or 'lean').
import { build } from '../index.js';

console.log(build);
