import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='AppError']",
          message:
            'Throw a factory from Errors (services/kit/src/errors.ts); add one there for a new condition.',
        },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'infra/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
