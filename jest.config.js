/** Three jest projects, one per layer of the test pyramid (`npx jest --selectProjects NAME`):
 *
 * - unit:    `*.unit.test.ts` and tests beside the code in `src/` — pure rules, no server, no
 *            global setup, seconds.
 * - service: one service (or one sandbox, the migration runner, the stack launcher) against real
 *            Postgres, Redis and bucket, fakes at its ports.
 * - e2e:     the whole mesh driven over HTTP through the gateway (`gateway/test/`).
 *
 * swc strips types (tsc -b checks them); every @atelier/* import resolves to TypeScript source so
 * tests never run stale builds. service and e2e name the same global setup, which jest runs once
 * per run (it dedupes hooks by path), so both share one Postgres, Redis and bucket. */
const swc = [
  '@swc/jest',
  { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
];

const UNIT = ['<rootDir>/**/test/**/*.unit.test.ts', '<rootDir>/services/*/src/**/*.test.ts'];
// The console's browser test drives the mesh through the gateway too.
const E2E = ['<rootDir>/gateway/test/**/*.test.ts', '<rootDir>/console/test/**/*.test.ts'];
const ANY = ['<rootDir>/{services,gateway,infra,protos,console}/**/test/**/*.test.ts'];

const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper: {
    '^@atelier/protos$': '<rootDir>/protos/gen/index.ts',
    '^@atelier/kit$': '<rootDir>/services/kit/src/index.ts',
    '^@atelier/(billing|imager|trainer|inferencer)$': '<rootDir>/services/$1/src/index.ts',
    '^@atelier/gateway$': '<rootDir>/gateway/src/index.ts',
    '^@atelier/infra/(.*)$': '<rootDir>/infra/$1',
  },
};

const withStack = {
  globalSetup: '<rootDir>/infra/testing/global-setup.ts',
  globalTeardown: '<rootDir>/infra/testing/global-teardown.ts',
  // Every answer received through mesh.api() is checked against the served OpenAPI document.
  setupFilesAfterEnv: ['<rootDir>/gateway/test/setup/contract.ts'],
};

/** A unit test matched by a wider project's glob belongs to unit only. */
const notUnit = ['/node_modules/', '/dist/', '\\.unit\\.test\\.ts$', '/src/'];

module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
  // A worker is replaced once its heap passes this after a file. Each test file's environment
  // stays in the worker's heap after the file ends (jest --detectLeaks flags every file, even a
  // one-line test importing only prom-client; no listener, timer or socket is left: at the end
  // only the IPC pipe is open and 'exit' fires within milliseconds), so a worker's heap grows by
  // 30–60 MB per file, and so does Node's teardown when the worker finally exits: 150 ms after
  // 2 mesh files, 400 ms after 4, past jest's 500 ms on a whole run, which jest reported as "A
  // worker process has failed to exit gracefully". Measured on 8 mesh files over 2 workers (load
  // 11): before, that warning and 380–400 ms exits; with this limit, 17 and 130 ms exits, no
  // warning, and the run 111 s instead of 146–168 s (less heap to collect).
  workerIdleMemoryLimit: '200MB',
  projects: [
    { ...base, displayName: 'unit', testMatch: UNIT },
    {
      ...base,
      ...withStack,
      displayName: 'service',
      testMatch: ANY,
      testPathIgnorePatterns: [...notUnit, '<rootDir>/gateway/test/', '<rootDir>/console/test/'],
    },
    { ...base, ...withStack, displayName: 'e2e', testMatch: E2E, testPathIgnorePatterns: notUnit },
  ],
};
