import base from '/work/wt-lint/eslint.config.mjs';
import tseslint from 'typescript-eslint';
const TC = Object.assign({}, ...tseslint.configs.recommendedTypeCheckedOnly.filter((c) => c.name === 'typescript-eslint/recommended-type-checked-only').map((c) => c.rules));
export default [
  ...base,
  {
    files: ['services/*/test/**/*.ts', 'gateway/test/**/*.ts', 'infra/test/**/*.ts', 'console/test/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: ['/work/wt-lint/tsconfig.test.json'], tsconfigRootDir: '/work/wt-lint' } },
    rules: TC,
  },
  {
    files: ['infra/**/*.ts'],
    ignores: ['infra/test/**'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: '/work/wt-lint' } },
    rules: TC,
  },
];
