/** One jest project for the whole workspace: swc strips types (tsc -b checks them), every
 * @atelier/* import resolves to TypeScript source so tests never run stale builds. */
const swc = [
  '@swc/jest',
  { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
];
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: [
    '<rootDir>/{services,gateway,infra,protos}/**/test/**/*.test.ts',
    '<rootDir>/services/*/src/**/*.test.ts',
  ],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper: {
    '^@atelier/protos$': '<rootDir>/protos/gen/index.ts',
    '^@atelier/kit$': '<rootDir>/services/kit/src/index.ts',
    '^@atelier/(billing|imager|trainer|inferencer)$': '<rootDir>/services/$1/src/index.ts',
    '^@atelier/gateway$': '<rootDir>/gateway/src/index.ts',
    '^@atelier/infra/(.*)$': '<rootDir>/infra/$1',
  },
  globalSetup: '<rootDir>/infra/testing/global-setup.ts',
  globalTeardown: '<rootDir>/infra/testing/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
