import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);

export { z };

export const ProblemSchema = z
  .object({
    type: z.string(),
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
