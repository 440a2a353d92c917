import type { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/**
 * The gateway's contract checked from outside: every answer a test receives through the harness
 * is held against the OpenAPI document the gateway serves, by Ajv (an independent JSON Schema
 * validator), never against the zod schemas the document was generated from. A response whose
 * status the route does not list, whose content type the status does not list, or whose body does
 * not match the schema is a violation; the e2e project's setup file fails the test that received it.
 */

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
export interface OpenApiDocument {
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

/** The routes the document describes; anything else the gateway serves (health, console) is not API. */
const API_PREFIXES = ['/api/v1/', '/sdapi/v1/'];
/** Errors on these paths are RFC 9457 problems; the A1111-compatible routes answer A1111's shape. */
const PROBLEM_PREFIX = '/api/v1/';
const PROBLEM_TYPE = 'application/problem+json';
const DOC_ID = 'atelier-openapi';

export interface ContractChecker {
  /** Returns what the response does wrong against the document; empty when it conforms. */
  check(method: string, url: string, status: number, contentType: string | null, body: string): string[];
}

const pointer = (...segments: string[]) =>
  '#/' + segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export function createContractChecker(document: OpenApiDocument): ContractChecker {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; `strict: false` lets the document's own keywords
  // (openapi, info, paths, example) sit beside the schemas Ajv reads.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(document, DOC_ID);
  const validators = new Map<string, ValidateFunction>();
  const validator = (ref: string) => {
    let v = validators.get(ref);
    if (!v) {
      v = ajv.compile({ $ref: `${DOC_ID}${ref}` });
      validators.set(ref, v);
    }
    return v;
  };
  // Literal segments win over parameters (/prompts/list/{id} before /prompts/{id}).
  const templates = Object.keys(document.paths ?? {})
    .map((template) => ({
      template,
      pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      literals: template.split('/').filter((s) => s && !s.startsWith('{')).length,
    }))
    .sort((a, b) => b.literals - a.literals);
  const problemRef = document.components?.schemas?.Problem
    ? pointer('components', 'schemas', 'Problem')
    : null;

  const validate = (ref: string, body: string, what: string): string[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return [`${what}: the body is not JSON: ${body.slice(0, 120)}`];
    }
    const v = validator(ref);
    if (v(parsed)) return [];
    return [`${what}: ${describe(v.errors ?? [])} in ${body.slice(0, 300)}`];
  };

  return {
    check(method, url, status, contentType, body) {
      const path = new URL(url, 'http://x').pathname;
      if (!API_PREFIXES.some((p) => path.startsWith(p)) || path === '/api/v1/openapi.json') return [];
      const what = `${method.toUpperCase()} ${path} → ${status}`;
      const type = contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
      const problemRoute = path.startsWith(PROBLEM_PREFIX);
      if (status >= 400 && problemRoute && type !== PROBLEM_TYPE)
        return [`${what}: an error answered ${type || 'no content type'}, not ${PROBLEM_TYPE}`];
      const template = templates.find((t) => t.pattern.test(path))?.template;
      const operation = template ? document.paths![template]![method.toLowerCase()] : undefined;
      if (!operation) {
        // An unknown route or method is the router's problem+json 404/405, not an operation.
        if ((status === 404 || status === 405) && problemRoute && problemRef)
          return validate(problemRef, body, what);
        return [`${what}: no operation ${method.toUpperCase()} ${template ?? path} in the document`];
      }
      const responses = operation.responses ?? {};
      const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
      if (!key)
        return [
          `${what}: status not listed for ${method.toUpperCase()} ${template} (lists ${Object.keys(responses).join(', ')})`,
        ];
      const content = responses[key]!.content;
      if (!content)
        return body.length ? [`${what}: a body the document does not describe: ${body.slice(0, 120)}`] : [];
      if (!(type in content))
        return [
          `${what}: content type ${type || 'none'} not listed (lists ${Object.keys(content).join(', ')})`,
        ];
      if (!type.includes('json') || !content[type]!.schema) return [];
      return validate(
        pointer('paths', template!, method.toLowerCase(), 'responses', key, 'content', type, 'schema'),
        body,
        what,
      );
    },
  };
}

function describe(errors: ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map(
      (e) =>
        `${e.instancePath || '/'} ${e.message ?? e.keyword}${e.params ? ' ' + JSON.stringify(e.params) : ''}`,
    )
    .join('; ');
}

/** What the e2e setup file reads: violations since it last looked, and how many answers were checked. */
export interface ContractLog {
  violations: string[];
  checked: number;
}

/** Shared through globalThis: the setup file and a test file may not load this module once. */
export function contractLog(): ContractLog {
  const g = globalThis as { [key: symbol]: ContractLog | undefined };
  const key = Symbol.for('atelier.contract');
  return (g[key] ??= { violations: [], checked: 0 });
}

const checkers = new Map<string, ContractChecker>();

/** One checker per distinct document (every mesh serves the same one; compile it once). */
export function checkerFor(documentText: string): ContractChecker {
  let checker = checkers.get(documentText);
  if (!checker) {
    checker = createContractChecker(JSON.parse(documentText) as OpenApiDocument);
    checkers.set(documentText, checker);
  }
  return checker;
}

/**
 * Reads the answer once, records what it does wrong, and hands the test an equal Response
 * (status, headers and body) it can read as usual.
 */
export async function checkedResponse(checker: ContractChecker, method: string, url: string, res: Response) {
  const type = res.headers.get('content-type');
  // Images and archives are not described beyond their status and type: do not buffer them.
  const textual = !type || type.includes('json') || type.startsWith('text/');
  const body = textual ? await res.text() : '';
  const log = contractLog();
  log.checked++;
  log.violations.push(...checker.check(method, url, res.status, type, body));
  if (!textual) return res;
  const nullBody = res.status === 204 || res.status === 304;
  return new Response(nullBody ? null : body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}
