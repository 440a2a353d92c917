import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createContractChecker, type OpenApiDocument } from '../testing/contract';

/** The outside contract checker (infra/testing/contract.ts) against the committed document. */
const document = JSON.parse(
  readFileSync(path.join(__dirname, '..', '..', 'gateway', 'openapi.json'), 'utf8'),
) as OpenApiDocument;
const checker = createContractChecker(document);
const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';
const plan = {
  id: 'basic_init',
  name: 'Basic',
  description: 'd',
  price: 1300,
  currency: 'usd',
  images: 100,
  is_init: true,
  min_images: 5,
  max_images: 30,
};
const problem = (status: number) =>
  JSON.stringify({
    type: 'https://atelier.dev/problems/not-found',
    title: 'Not found',
    status,
    detail: 'x',
    request_id: 'r',
  });

describe('contract checker', () => {
  it('accepts an answer its operation documents', () => {
    expect(
      checker.check('GET', '/api/v1/plans?x=1', 200, JSON_TYPE, JSON.stringify({ plans: [plan] })),
    ).toEqual([]);
    expect(
      checker.check(
        'GET',
        '/api/v1/payments/5b0e1a7c-0000-4000-8000-000000000000',
        404,
        PROBLEM_TYPE,
        problem(404),
      ),
    ).toEqual([]);
    expect(checker.check('POST', '/api/v1/payments/create', 415, PROBLEM_TYPE, problem(415))).toEqual([]);
  });

  it('reports a body that does not match the schema', () => {
    const [violation] = checker.check(
      'GET',
      '/api/v1/plans',
      200,
      JSON_TYPE,
      JSON.stringify({ plans: [{ ...plan, price: '13.00' }] }),
    );
    expect(violation).toMatch(/GET \/api\/v1\/plans → 200: \/plans\/0\/price must be integer/);
    expect(checker.check('GET', '/api/v1/plans', 200, JSON_TYPE, '{"plans":')[0]).toMatch(/not JSON/);
  });

  it('reports a status the route does not list', () => {
    expect(checker.check('GET', '/api/v1/plans', 418, PROBLEM_TYPE, problem(418))[0]).toMatch(
      /status not listed/,
    );
  });

  it('reports an error that is not a problem, or a problem missing its fields', () => {
    expect(checker.check('GET', '/api/v1/plans', 500, JSON_TYPE, '{"error":"x"}')[0]).toMatch(
      /not application\/problem\+json/,
    );
    const partial = JSON.stringify({ type: 't', title: 't', status: 404, detail: 'd' });
    expect(checker.check('GET', '/api/v1/nowhere', 404, PROBLEM_TYPE, partial)[0]).toMatch(/request_id/);
  });

  it('reports an operation the document does not have', () => {
    expect(checker.check('PUT', '/api/v1/plans', 200, JSON_TYPE, '{}')[0]).toMatch(/no operation PUT/);
  });

  it('holds the A1111 routes to their own error shape, and ignores what is not API', () => {
    const fastapi = JSON.stringify({ detail: [{ loc: ['body', 'steps'], msg: 'x', type: 'value_error' }] });
    expect(checker.check('POST', '/sdapi/v1/txt2img', 422, JSON_TYPE, fastapi)).toEqual([]);
    expect(checker.check('POST', '/sdapi/v1/txt2img', 400, PROBLEM_TYPE, problem(400))[0]).toMatch(
      /status not listed/,
    );
    expect(checker.check('GET', '/healthz', 200, 'text/plain', 'ok')).toEqual([]);
  });
});
