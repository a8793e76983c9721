// The lint gate (part of `npm test`): typed rules from typescript-eslint, the room rules of the
// architecture (what may import what), one reader of the environment, and functions short enough
// to read on one screen. Tests, fixtures and the bench may do what source code may not.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const HANDLER_DIRS = ['backup', 'cleanup', 'health-check', 'migrate', 'notify-slack', 'shared'].map((d) => `./functions/${d}`);

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'dist/**', 'bench/run.js', 'bin/pgops.js', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Only functions/core/config.ts reads the environment: add the setting there (ENV, loadSettings) and pass it in.' }],
      'import-x/no-restricted-paths': ['error', {
        zones: [
          { target: './functions/core', from: './bin', message: 'The core knows no terminal: CLI code lives in bin/ and calls the core.' },
          { target: './functions/core', from: './lib', message: 'The core knows no CDK.' },
          { target: './functions/core', from: HANDLER_DIRS, message: 'Jobs know no Lambda event: handler code lives beside the handlers.' },
          { target: ['./functions', './bin/pgops.ts', './bin/commands', './bin/render', './bin/demo'], from: './lib', message: 'Runtime code ships without CDK.' },
          { target: './functions', from: './bin', message: 'Handlers and the task run jobs, not the CLI module.' },
          { target: './lib', from: './bin', message: 'Infrastructure knows no CLI.' },
          { target: './lib', from: './functions', except: ['./core/config.ts'], message: 'Infrastructure may import the core config (schema and environment names) only; anything more is business logic in constructs.' },
        ],
      }],
    },
  },
  {
    // The one module that reads the environment.
    files: ['functions/core/config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**', 'bench/**', 'vitest.config.ts', 'eslint.config.js'],
    rules: {
      'no-restricted-properties': 'off',
      'max-lines-per-function': 'off',
      'import-x/no-restricted-paths': 'off',
      // Tests poke at values whose shape they assert right after.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
