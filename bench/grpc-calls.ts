/**
 * What one participant call costs the operator's process in grpc-js, per channel option.
 *
 *   npx tsx bench/grpc-calls.ts
 *
 * A participant server (the SDK's serveParticipant) in a process of its own; in this process one
 * channel per variant, built as src/participants/pool.ts builds it plus the variant's options, and
 * 64 unary Try calls in flight (BranchRequest of the benchmark's size). Variants alternate, rounds
 * of CALLS calls each; CPU of this process per call (process.cpuUsage).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { BranchRequest, BranchResponse } from '../src/gen/kubetx/v1/participant.js';
import { CHANNEL_OPTIONS } from '../src/participants/pool.js';

const CALLS = Number(process.env.KUBETX_BENCH_GRPC_CALLS ?? 20_000);
const ROUNDS = 3;
const IN_FLIGHT = 64;
const PATH = '/kubetx.v1.TccParticipant/Try';

const variants: Array<{ label: string; options: Record<string, number> }> = [
  { label: 'as the pool builds it', options: {} },
  { label: 'grpc.enable_retries 0', options: { 'grpc.enable_retries': 0 } },
  { label: 'grpc.enable_channelz 0', options: { 'grpc.enable_channelz': 0 } },
  { label: 'both 0', options: { 'grpc.enable_retries': 0, 'grpc.enable_channelz': 0 } },
];

const server = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lib/participant-server-main.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
const [address] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];

const request: BranchRequest = {
  transactionUid: '6f1c2d3e-0000-4000-8000-000000000001', namespace: 'bench', name: 'b4r0-123', branch: 'order',
  operation: 'pay', payload: Buffer.from('{"orderId":1000,"sku":"A-1","qty":2,"userId":7}'), attempt: 1, result: Buffer.alloc(0),
};
const encode = (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish());
const decode = (b: Buffer) => BranchResponse.decode(b);

function call(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(PATH, encode, decode, request, new Metadata(), { deadline: new Date(Date.now() + 5000) }, (err) => (err ? reject(err) : resolve()));
  });
}

async function round(client: Client, n: number): Promise<number> {
  const t0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < n) await call(client);
  }));
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000 / n;
}

const clients = variants.map((v) => new Client(address, credentials.createInsecure(), { ...CHANNEL_OPTIONS, ...v.options }));
for (const c of clients) await round(c, 2000); // warm-up: connections, JIT
const sums = variants.map(() => 0);
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i);
  for (const i of order) {
    const ms = await round(clients[i]!, CALLS);
    sums[i]! += ms;
    console.log(`round ${r + 1}, ${variants[i]!.label}: ${(ms * 1000).toFixed(1)} µs CPU per call`);
  }
}
console.log('\n| channel | µs CPU per call (client) | ÷ as the pool builds it |\n| --- | ---: | ---: |');
for (const [i, v] of variants.entries()) console.log(`| ${v.label} | ${((sums[i]! / ROUNDS) * 1000).toFixed(1)} | ${(sums[i]! / sums[0]!).toFixed(2)}× |`);
for (const c of clients) c.close();
server.stdin!.end();
