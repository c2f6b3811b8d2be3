import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workspace packages export their TypeScript sources under this condition, so tests run
  // against src/ without a build step (see each package.json "exports"). Tests run in Vite's SSR
  // environment, whose resolution has its own conditions.
  resolve: { conditions: ['@serene/source'] },
  ssr: { resolve: { conditions: ['@serene/source'], externalConditions: ['@serene/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
