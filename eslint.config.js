// The import boundaries of the layout (docs/architecture.md, "Layout"), checked by `npm run typecheck`:
// a tier reaches shared code only through each folder's index.ts (its public surface), and never
// imports another tier. Only these rules run: formatting and style are not linted.
import tsParser from '@typescript-eslint/parser';

const TIERS = ['gateway', 'api', 'persister'];

const throughIndex = {
  regex: String.raw`^(\.\./)+shared/[a-z-]+/(?!index\.ts$)[^/]+$`,
  message: 'import shared code through its folder\'s index.ts (the folder\'s public surface)',
};

const otherTiers = (tier) => ({
  regex: String.raw`^(\.\./)+(${TIERS.filter((t) => t !== tier).join('|')}|bin)/`,
  message: 'a tier never imports another tier: they talk through the bus and the store',
});

export default [
  { ignores: ['node_modules/**', 'api/web/**', 'data/**', 'bench/results/**'] },
  ...TIERS.map((tier) => ({
    files: [`${tier}/**/*.ts`],
    ignores: ['**/*.test.ts'],
    languageOptions: { parser: tsParser },
    rules: { 'no-restricted-imports': ['error', { patterns: [throughIndex, otherTiers(tier)] }] },
  })),
  {
    files: ['bin/**/*.ts'],
    ignores: ['**/*.test.ts'],
    languageOptions: { parser: tsParser },
    rules: { 'no-restricted-imports': ['error', { patterns: [throughIndex] }] },
  },
];
