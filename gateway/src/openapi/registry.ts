import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ERROR_TABLE, type ErrorCode } from '@atelier/kit';
import { problemType } from '../errors/problem';

extendZodWithOpenApi(z);

export { z };

const PROBLEM_TYPES = Object.keys(ERROR_TABLE).map((code) => problemType(code as ErrorCode));

/** Every code a problem's `type` can name, with its HTTP status and title (the one table in kit). */
const CODES = Object.entries(ERROR_TABLE)
  .map(([code, e]) => `- \`${problemType(code as ErrorCode)}\` (${e.http}): ${e.title}`)
  .join('\n');

export const ProblemSchema = z
  .object({
    type: z
      .enum(PROBLEM_TYPES as [string, ...string[]])
      .describe(`The error's code as a URI; clients branch on it, never on \`detail\`. One of:\n${CODES}`),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    request_id: z.string(),
    errors: z.array(z.unknown()).optional(),
  })
  .openapi('Problem');

export function buildDocument(registry: OpenAPIRegistry) {
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'API key',
  });
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Atelier API',
      version: '1.0.0',
      description:
        'Train a personalised image model from 5–30 photos and generate images with it. Errors are RFC 9457 problem+json.',
    },
    servers: [{ url: '/' }],
  });
}
