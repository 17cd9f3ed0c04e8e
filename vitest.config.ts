import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no control plane, fast) and `integration`
// (a real kube-apiserver + etcd started once per run by the global setup).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Property tests run hundreds of cases; on a loaded 2-core machine
          // the default 5 s is too tight, and a timeout proves nothing.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Test files share one control plane; the operator processes they
          // start compete for 2 cores, so run files one after another.
          fileParallelism: false,
        },
      },
    ],
  },
});
