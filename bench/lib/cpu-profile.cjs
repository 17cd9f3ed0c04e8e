/*
 * Preloaded into the operator for the profile figure:
 *   NODE_OPTIONS="--require bench/lib/cpu-profile.cjs" KUBETX_BENCH_PROFILE_DIR=dir
 * `node --cpu-prof` is not allowed in NODE_OPTIONS, and startOperator passes its
 * `args` after the script, so this does the same through the inspector: the
 * first SIGUSR2 starts the V8 CPU profiler, the second stops it and writes
 * dir/operator-<pid>-<n>.cpuprofile (the same format as --cpu-prof: open it in
 * Chrome DevTools or summarize it with bench/profile-summary.ts). The in-process
 * inspector session answers synchronously, so this works inside a signal handler.
 * SIGWINCH runs a full garbage collection (HeapProfiler.collectGarbage), so the
 * scale figure can read the live heap rather than live + garbage.
 */
'use strict';
const { isMainThread } = require('node:worker_threads');
const dir = process.env.KUBETX_BENCH_PROFILE_DIR;
if (isMainThread && dir) {
  const inspector = require('node:inspector');
  const fs = require('node:fs');
  const path = require('node:path');
  let session;
  let n = 0;
  let gcSession;
  process.on('SIGWINCH', () => {
    // One long-lived session: the collection runs after this handler returns, and
    // disconnecting from inside its callback hangs the process.
    if (!gcSession) {
      gcSession = new inspector.Session();
      gcSession.connect();
    }
    gcSession.post('HeapProfiler.collectGarbage');
  });
  process.on('SIGUSR2', () => {
    if (!session) {
      session = new inspector.Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: Number(process.env.KUBETX_BENCH_PROFILE_INTERVAL_US || 500) });
      session.post('Profiler.start');
      return;
    }
    session.post('Profiler.stop', (err, res) => {
      const file = path.join(dir, `operator-${process.pid}-${n++}.cpuprofile`);
      if (!err) {
        fs.writeFileSync(file + '.tmp', JSON.stringify(res.profile));
        fs.renameSync(file + '.tmp', file);
      }
      const done = session;
      session = undefined;
      setImmediate(() => done.disconnect());
    });
  });
}
