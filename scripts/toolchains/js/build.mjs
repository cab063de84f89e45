// Builds one JavaScript module into a component with the componentize-js
// API (the jco CLI had trouble with WIT paths outside its working folder):
//   node build.mjs TOOLCHAIN_DIR SOURCE.js WIT_DIR WORLD OUT.wasm
// scripts/build-components runs it; TOOLCHAIN_DIR is the folder that
// scripts/component-toolchains installed componentize-js into.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [toolchain, sourcePath, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node build.mjs TOOLCHAIN_DIR SOURCE.js WIT_DIR WORLD OUT.wasm');
  process.exit(2);
}
const api = join(toolchain, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js');
const { componentize } = await import(pathToFileURL(api).href);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  // The module imports only its own world: no wasi:http, no fetch event.
  disableFeatures: ['http', 'fetch-event'],
});
await writeFile(out, component);
