// Writes openapi/openapi.json from the app's routes (npm run openapi). A test compares the
// committed file with this output, so the document cannot drift from the code.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url));

/** The document as committed: built without models (it depends on the routes only), stable JSON. */
export async function openapiText(): Promise<string> {
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent' }), { runtime: null });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    console.log(`npm run openapi: writes the app's OpenAPI document to ${OPENAPI_PATH} (test/http/openapi.test.ts fails when it drifts). No options.`);
    process.exit(0);
  }
  if (process.argv.length > 2) {
    console.error(`unknown arguments: ${process.argv.slice(2).join(' ')} (npm run openapi takes none; --help)`);
    process.exit(2);
  }
  await mkdir(dirname(OPENAPI_PATH), { recursive: true });
  await writeFile(OPENAPI_PATH, await openapiText());
  console.log(`wrote ${OPENAPI_PATH}`);
}
