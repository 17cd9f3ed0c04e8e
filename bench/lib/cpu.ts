/**
 * CPU time of the processes under test, from /proc (Linux): on a shared
 * 2-core machine, CPU milliseconds per transaction are steadier than rates.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of a process, in ms; NaN when it is gone. */
export function cpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name in parentheses (which may contain spaces).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return NaN;
  }
}

/** The control plane's etcd and kube-apiserver pids (the harness lists them in children.pids). */
export function controlPlanePids(cpDir: string): { etcd?: number; apiserver?: number } {
  const out: { etcd?: number; apiserver?: number } = {};
  try {
    for (const p of readFileSync(join(cpDir, 'children.pids'), 'utf8').trim().split(/\s+/).map(Number)) {
      const comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      if (comm === 'etcd') out.etcd = p;
      if (comm === 'kube-apiserver') out.apiserver = p;
    }
  } catch {
    /* not Linux, or already stopped */
  }
  return out;
}

export interface CpuSnapshot {
  operator: number;
  apiserver: number;
  etcd: number;
  bench: number;
}

export function cpuSnapshot(pids: { operator?: number; apiserver?: number; etcd?: number }): CpuSnapshot {
  const u = process.cpuUsage();
  return { operator: cpuMs(pids.operator), apiserver: cpuMs(pids.apiserver), etcd: cpuMs(pids.etcd), bench: (u.user + u.system) / 1000 };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot, n: number): CpuSnapshot {
  return { operator: (b.operator - a.operator) / n, apiserver: (b.apiserver - a.apiserver) / n, etcd: (b.etcd - a.etcd) / n, bench: (b.bench - a.bench) / n };
}
