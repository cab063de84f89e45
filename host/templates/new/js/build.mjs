// Builds src/module.js into the WebAssembly component ./{{wasm_file}}:
// `npm run build`.
//
// No WASI HTTP and no fetch event: the module calls out through the host's
// `commerce:fulfillment/http` import only, and the host links no WASI HTTP.
import { writeFile } from 'node:fs/promises';
import { componentize } from '@bytecodealliance/componentize-js';

const { component } = await componentize({
  sourcePath: 'src/module.js',
  witPath: 'wit',
  worldName: 'fulfillment-module',
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile('{{wasm_file}}', component);
console.log('built {{wasm_file}}');
