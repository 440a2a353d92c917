// Writes gateway/openapi.json, the committed copy of the document the gateway serves at
// /api/v1/openapi.json. Run through `npm run openapi` (which builds the gateway first) after any
// route change; gateway/test/openapi-committed.test.ts fails while the two differ.
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(here, '..', 'openapi.json');
const { apiDocument } = require('../dist/openapi/document.js');

const options = { ...(await prettier.resolveConfig(file)), filepath: file };
await writeFile(file, await prettier.format(JSON.stringify(apiDocument()), options));
console.log(`wrote ${path.relative(process.cwd(), file)}`);
