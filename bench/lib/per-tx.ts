/**
 * What a figure cost per transaction. API requests, read from the API server's own
 * apiserver_request_total before and after a figure: what etcd had to write,
 * whoever wrote it (the benchmark's creates, the operator's status writes,
 * Events), rather than what the operator believes it wrote; and CPU of the
 * operator, kube-apiserver, etcd and this process, from /proc.
 */
import { counterValue, type OperatorProcess } from '../../test/support/operator.js';
import { cpuDelta, cpuSnapshot, type CpuSnapshot } from './cpu.js';
import { diffRequests, parseRequestTotals, sumRequests, type Api, type RequestCounts } from './kube.js';
import type { LoadResult } from './load.js';

/** API requests per transaction, from the API server's own apiserver_request_total. */
export interface PerTx {
  statusPut: number;
  statusPutOk: number;
  statusConflicts: number;
  mainByVerb: Record<string, number>;
  events: number;
  /** Every mutating request (POST/PUT/PATCH/DELETE) that succeeded, of any resource: what etcd had to write. */
  allWrites: number;
}

export function perTx(d: RequestCounts, n: number): PerTx {
  const dtx = (l: Record<string, string>) => l.resource === 'distributedtransactions';
  const ok = (l: Record<string, string>) => /^2/.test(l.code ?? '');
  const statusPut = sumRequests(d, (l) => dtx(l) && l.subresource === 'status' && l.verb === 'PUT');
  const statusPutOk = sumRequests(d, (l) => dtx(l) && l.subresource === 'status' && l.verb === 'PUT' && ok(l));
  const statusConflicts = sumRequests(d, (l) => dtx(l) && l.subresource === 'status' && l.code === '409');
  const mainByVerb: Record<string, number> = {};
  for (const x of d) if (dtx(x.labels) && !x.labels.subresource) mainByVerb[x.labels.verb!] = (mainByVerb[x.labels.verb!] ?? 0) + x.value / n;
  const events = sumRequests(d, (l) => l.resource === 'events' && ['POST', 'PATCH', 'PUT'].includes(l.verb ?? '') && ok(l));
  const allWrites = sumRequests(d, (l) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(l.verb ?? '') && ok(l) && l.resource !== 'tokenreviews' && l.resource !== 'subjectaccessreviews');
  return { statusPut: statusPut / n, statusPutOk: statusPutOk / n, statusConflicts: statusConflicts / n, mainByVerb, events: events / n, allWrites: allWrites / n };
}

export async function requests(api: Api): Promise<RequestCounts> {
  return parseRequestTotals(await api.metrics());
}

/** Runs `body` (a load against `op`), returning its result, the API requests and the CPU per transaction it caused. */
export async function measure<T extends LoadResult>(
  api: Api,
  op: OperatorProcess,
  controlPlane: { etcd?: number; apiserver?: number },
  body: () => Promise<T>,
): Promise<{ r: T; per: PerTx; opWrites: number; cpu: CpuSnapshot }> {
  const before = await requests(api);
  const opBefore = counterValue(await op.metrics(), 'kubetx_status_writes_total');
  const pids = { ...controlPlane, operator: op.child.pid };
  const cpu0 = cpuSnapshot(pids);
  const r = await body();
  // Events are recorded asynchronously after the status write: let them land.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const cpu1 = cpuSnapshot(pids);
  const after = await requests(api);
  const opAfter = counterValue(await op.metrics(), 'kubetx_status_writes_total');
  const n = r.samples.length || 1;
  return { r, per: perTx(diffRequests(before, after), n), opWrites: (opAfter - opBefore) / n, cpu: cpuDelta(cpu0, cpu1, n) };
}
