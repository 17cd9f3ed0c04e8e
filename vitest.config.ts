import { defineConfig } from 'vitest/config';

// Three projects: `unit` (pure logic, no control plane, fast), `integration`
// (a real kube-apiserver + etcd started once per run by the global setup) and
// `e2e` (the payment example end to end: against that control plane by
// default, against a kind cluster with KUBETX_E2E_TARGET=cluster, see
// hack/kind-e2e.sh). A project's global setup runs for that project, so a full
// run starts one control plane for `integration` and one for `e2e`.
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
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 180_000,
          // In a cluster, beforeAll waits for the participants' rollouts.
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
