import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers of CONVENTIONS.md ("Layers checked by lint"). One `no-restricted-imports` per file
// set: ESLint replaces a rule's options per matching block, so each block lists all that apply.
const SERVICES = ['billing', 'imager', 'trainer', 'inferencer'];
const VENDOR = {
  group: [
    'pg',
    'pg-*',
    '@grpc/*',
    'express',
    'express-*',
    'stripe',
    'replicate',
    '@aws-sdk/*',
    'ioredis',
    'redis',
    'busboy',
  ],
  message:
    'Domain code imports no pg, gRPC, Express or vendor SDK: reach them through a port (domain/ports.ts) an adapter implements.',
};
const CLIENTS = {
  group: ['**/clients', '**/clients/*', '**/grpc', '**/grpc/*', '@atelier/protos'],
  message: 'Domain code imports no clients/ or gRPC code: declare what it needs in domain/ports.ts.',
};
// Repositories translate Postgres errors into domain errors or typed results (CONVENTIONS.md):
// a domain file names no SQLSTATE, neither through the kit's helpers nor as a literal.
const PG_ERRORS = {
  name: '@atelier/kit',
  importNames: ['pgCode', 'PG_UNIQUE_VIOLATION', 'PG_FOREIGN_KEY_VIOLATION'],
  message:
    'Domain code never sees a Postgres error: the repository translates it into a domain error (Errors.*) or a typed result.',
};
const APP_ERROR = {
  selector: "NewExpression[callee.name='AppError']",
  message: 'Throw a factory from Errors (services/kit/src/errors.ts); add one there for a new condition.',
};
const SQLSTATE_MESSAGE =
  'A SQLSTATE in domain code: translate the Postgres error in the repository (a domain error or a typed result).';
const SQLSTATE = [
  { selector: 'Literal[value=/^(?=.*[0-9])[0-9A-Z]{5}$/]', message: SQLSTATE_MESSAGE },
  { selector: 'TemplateElement[value.raw=/^(?=.*[0-9])[0-9A-Z]{5}$/]', message: SQLSTATE_MESSAGE },
];
// Each schema has one owner (CONVENTIONS.md), and a service's tests arrange state in its own
// schema only: another service's rows are that service's to write, through its API.
const SCHEMAS = ['billing', 'trainer', 'inferencer'];
const otherSchemaWrites = (self) => {
  const others = SCHEMAS.filter((s) => s !== self).join('|');
  const write = `/(INSERT\\s+INTO|UPDATE|DELETE\\s+FROM|TRUNCATE(\\s+TABLE)?)\\s+(${others})[.]/i`;
  const message = `A test of ${self} writes another service's schema (${others}): ask that service (a fake at the port, or its API), or move the test where it belongs.`;
  return [
    { selector: `Literal[value=${write}]`, message },
    { selector: `TemplateElement[value.raw=${write}]`, message },
  ];
};
const testSchemaWrites = ['kit', ...SERVICES].map((s) => ({
  files: [`services/${s}/test/**/*.ts`],
  rules: { 'no-restricted-syntax': ['error', APP_ERROR, ...otherSchemaWrites(s)] },
}));
// End-to-end tests drive the mesh through its API; a state no API reaches in test time is
// written by infra/testing/fixtures.ts, one place to fix when a schema changes.
const e2eSchemaWrites = {
  files: ['gateway/test/**/*.ts', 'console/test/**/*.ts'],
  rules: {
    'no-restricted-syntax': [
      'error',
      APP_ERROR,
      ...otherSchemaWrites('an end-to-end test').map((r) => ({
        ...r,
        message:
          'An end-to-end test writes a schema directly: arrange the state through infra/testing/fixtures.ts (insertVersionRow, scheduleCheck, …).',
      })),
    ],
  },
};
const otherServices = (self) => ({
  group: SERVICES.filter((s) => s !== self).flatMap((s) => [
    `@atelier/${s}`,
    `**/${s}/src`,
    `**/${s}/src/**`,
  ]),
  message: 'A service imports no other service: ask it over gRPC (each service owns its code and schema).',
});
const serviceLayers = SERVICES.flatMap((s) => [
  {
    files: [`services/${s}/src/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: [otherServices(s)] }] },
  },
  {
    files: [`services/${s}/src/domain/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [PG_ERRORS], patterns: [otherServices(s), VENDOR, CLIENTS] },
      ],
      'no-restricted-syntax': ['error', APP_ERROR, ...SQLSTATE],
    },
  },
]);
const gatewayLayer = {
  files: ['gateway/src/**/*.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: [...SERVICES.map((s) => `@atelier/${s}`), '**/services/*/src', '**/services/*/src/**'],
            message:
              'The gateway is a protocol adapter: it reaches services over gRPC (@atelier/protos), never their code.',
          },
        ],
      },
    ],
  },
};

// The type-aware rules of recommendedTypeChecked (the rest of it is in `recommended`, on above).
const TYPE_CHECKED = Object.assign(
  {},
  ...tseslint.configs.recommendedTypeCheckedOnly
    .filter((c) => c.name === 'typescript-eslint/recommended-type-checked-only')
    .map((c) => c.rules),
);

// Passing on what a catch or an 'error' event received is how failures propagate here.
const PROPAGATE = {
  '@typescript-eslint/prefer-promise-reject-errors': [
    'error',
    { allowThrowingAny: true, allowThrowingUnknown: true },
  ],
};
// Tests: all but no-unsafe-assignment (jest's asymmetric matchers — expect.any(String),
// expect.objectContaining(…) — are typed any, so every object built from them would be flagged)
// and require-await (fakes are async to implement promise ports). Rows and JSON bodies are typed.
const TYPE_CHECKED_TESTS = Object.fromEntries(
  Object.entries(TYPE_CHECKED).filter(([rule]) => !/no-unsafe-assignment$|require-await$/.test(rule)),
);
// infra/ops checks read YAML and JSON documents (compose, rules, dashboards) as untyped data: no
// no-unsafe-* there (about 150 findings, every one a document read). infra's own code is stricter below.
const TYPE_CHECKED_LOOSE = Object.fromEntries(
  Object.entries(TYPE_CHECKED).filter(
    ([rule]) => !/no-unsafe-(assignment|member-access|return|call|argument)$|require-await$/.test(rule),
  ),
);

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      'protos/gen/**',
      'node_modules/**',
      '.atelier/**',
      'bench/results/**',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-namespace': 'off',
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    // One code and one factory per domain error, all in services/kit/src/errors.ts: a bare AppError
    // would give clients a code with prose no factory names.
    ignores: ['services/kit/src/errors.ts'],
    rules: { 'no-restricted-syntax': ['error', APP_ERROR] },
  },
  ...serviceLayers,
  gatewayLayer,
  ...testSchemaWrites,
  e2eSchemaWrites,
  {
    // typescript-eslint's recommendedTypeChecked on the product code: its type-aware rules (a
    // promise nobody awaits, an any flowing into typed code, a template of an object…).
    files: ['services/*/src/**/*.ts', 'gateway/src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: { ...TYPE_CHECKED, ...PROPAGATE },
  },
  {
    // Tests: see TYPE_CHECKED_TESTS. A promise nobody awaits there is an assertion that never
    // runs, so the promise rules matter most here.
    files: ['services/*/test/**/*.ts', 'gateway/test/**/*.ts', 'infra/test/**/*.ts', 'console/test/**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: { ...TYPE_CHECKED_TESTS, ...PROPAGATE },
  },
  {
    files: ['infra/**/*.ts'],
    ignores: ['infra/test/**'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      ...TYPE_CHECKED_LOOSE,
      ...PROPAGATE,
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['describe', 'it', 'test'], package: 'node:test' },
          ],
        },
      ],
    },
  },
  {
    // infra's own code (sandboxes, harness, stack, dev launcher, migrate) reads no any: the
    // no-unsafe-* rules too. require-await stays off: the sandboxes' controls are async so a
    // refusal is a rejection, as their callers expect.
    files: ['infra/**/*.ts'],
    ignores: ['infra/test/**', 'infra/ops/**'],
    rules: Object.fromEntries(Object.entries(TYPE_CHECKED).filter(([rule]) => /no-unsafe-/.test(rule))),
  },
  {
    files: ['**/test/**/*.ts', 'infra/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
