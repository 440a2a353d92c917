import { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { registerRoutes } from '../routes/define';
import { sdapiRoutes } from '../routes/sdapi';
import { v1Routes } from '../routes/v1';
import { buildDocument } from './registry';

/** The OpenAPI document of both route tables, /api/v1 and the A1111-compatible /sdapi/v1: what the
 * gateway serves and what `npm run openapi` writes to gateway/openapi.json (the file the console's
 * client is typed from). */
export function apiDocument() {
  const registry = new OpenAPIRegistry();
  registerRoutes(registry, [...v1Routes, ...sdapiRoutes]);
  return buildDocument(registry);
}
