// ESLint: typescript-eslint's recommended rules over the code, a warning for functions over 70 lines (the size a reader
// holds at once; TigerStyle's limit), and prettier owns the layout.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.accrue/', 'src/api/client/schema.d.ts', 'src/dashboard/client/dist/', '**/*.js', '!eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'max-lines-per-function': ['warn', { max: 70, skipBlankLines: true, skipComments: true }],
      // Refusing control characters in outside input is what those expressions are for.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Routes hold no SQL: they validate, call a stage's function and answer (docs/ARCHITECTURE.md).
    files: ['src/api/routes/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='query']", message: 'SQL belongs in a stage store module, not in a route.' },
      ],
    },
  },
  {
    // The simulators read request bodies as loosely as the vendor's parser before they validate them.
    files: ['test/support/*-sim.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // A test's describe block is a table of cases, not a function a reader must hold at once.
    files: ['test/**/*.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },
);
