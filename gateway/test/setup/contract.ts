import { contractLog } from '@atelier/infra/testing/contract';

/**
 * The outside contract check's verdict: a test fails when any answer it received through
 * `mesh.api()` does not match the served OpenAPI document (infra/testing/contract.ts says how).
 * Answers received in beforeAll/afterAll hooks are judged with the file's first/last test.
 */
function judge() {
  const log = contractLog();
  const violations = log.violations.splice(0);
  if (violations.length)
    throw new Error(
      `${violations.length} answer(s) differ from the OpenAPI document the gateway serves:\n` +
        violations.map((v) => `  - ${v}`).join('\n'),
    );
}

afterEach(judge);
afterAll(judge);
