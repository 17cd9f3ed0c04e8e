/**
 * The kit's gRPC side: plain grpc-js channels to the participant under test
 * and to its ConformanceHook, one unary call helper that never throws, and
 * a pool of channels that are really separate connections (a local
 * subchannel pool per channel, and a distinct channel option), so that two
 * calls fired "at once" race on the participant, not in one HTTP/2 stream queue.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  ConformanceHookService,
  type OpenAccountRequest,
  type PrepareMessageRequest,
  type ReadAccountResponse,
} from '../gen/kubetx/conformance/v1/hook.js';
import {
  BranchRequest,
  BranchResponse,
  CheckPreparedRequest,
  CheckPreparedResponse,
  CheckPreparedResponse_State,
  MessageSourceService,
} from '../gen/kubetx/v1/participant.js';
import { BRANCH_METHOD_PATHS } from '../participants/method-path.js';

export type BranchMethod = 'Try' | 'Confirm' | 'Cancel' | 'Execute' | 'Compensate' | 'Deliver';


export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** What one call answered: `code` 0 is OK; `details` is the status message otherwise. */
export interface CallResult<T> {
  code: grpc.status;
  details: string;
  response?: T;
}

export function codeName(code: number): string {
  return grpc.status[code] ?? `code ${code}`;
}

export function channelCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const read = (f: string | undefined) => (f ? readFileSync(f) : null);
  return grpc.credentials.createSsl(read(tls.ca), read(tls.key), read(tls.cert));
}

/** One connection to one address. */
export class Channel {
  readonly client: grpc.Client;

  constructor(
    readonly address: string,
    credentials: grpc.ChannelCredentials,
    index: number,
    tls: TlsFiles | undefined,
  ) {
    const options: grpc.ChannelOptions = {
      'grpc.use_local_subchannel_pool': 1,
      // A distinct option set: grpc-js never shares a subchannel between channels whose options differ.
      'kubetx.conformance.channel': index,
    };
    if (tls?.serverName) options['grpc.ssl_target_name_override'] = tls.serverName;
    this.client = new grpc.Client(address, credentials, options);
  }

  /** Waits until connected, or rejects after `ms`. */
  ready(ms: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())),
    );
  }

  unary<Req, Res>(path: string, encode: (v: Req) => Buffer, decode: (b: Buffer) => Res, request: Req, deadlineMs: number): Promise<CallResult<Res>> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(path, encode, decode, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) resolve({ code: err.code, details: err.details || err.message });
        else resolve({ code: grpc.status.OK, details: '', response: res });
      });
    });
  }

  branch(method: BranchMethod, request: BranchRequest, deadlineMs: number): Promise<CallResult<BranchResponse>> {
    return this.unary(
      BRANCH_METHOD_PATHS[method],
      (v: BranchRequest) => Buffer.from(BranchRequest.encode(v).finish()),
      (b: Buffer) => BranchResponse.decode(b),
      request,
      deadlineMs,
    );
  }

  checkPrepared(request: CheckPreparedRequest, deadlineMs: number): Promise<CallResult<CheckPreparedResponse_State>> {
    return this.unary(
      MessageSourceService.checkPrepared.path,
      (v: CheckPreparedRequest) => Buffer.from(CheckPreparedRequest.encode(v).finish()),
      (b: Buffer) => CheckPreparedResponse.decode(b).state,
      request,
      deadlineMs,
    );
  }

  close(): void {
    this.client.close();
  }
}

/** The hook's three calls over one channel. */
export class Hook {
  constructor(
    readonly channel: Channel,
    private readonly deadlineMs: number,
  ) {}

  openAccount(req: OpenAccountRequest): Promise<CallResult<unknown>> {
    const m = ConformanceHookService.openAccount;
    return this.channel.unary(m.path, m.requestSerialize, m.responseDeserialize, req, this.deadlineMs);
  }

  readAccount(account: string): Promise<CallResult<ReadAccountResponse>> {
    const m = ConformanceHookService.readAccount;
    return this.channel.unary(m.path, m.requestSerialize, m.responseDeserialize, { account }, this.deadlineMs);
  }

  prepareMessage(req: PrepareMessageRequest): Promise<CallResult<unknown>> {
    const m = ConformanceHookService.prepareMessage;
    return this.channel.unary(m.path, m.requestSerialize, m.responseDeserialize, req, this.deadlineMs);
  }
}

export interface Connections {
  /** Channels to the target; [0] for sequential calls, the others for races. */
  target: Channel[];
  hook: Hook;
  close(): void;
}

/** How many separate connections to the target the kit opens (races use two or more of them). */
export const TARGET_CHANNELS = 4;

export function connect(opts: { target: string; hook: string; tls?: TlsFiles; deadlineMs: number }): Connections {
  const creds = channelCredentials(opts.tls);
  const target = Array.from({ length: TARGET_CHANNELS }, (_, i) => new Channel(opts.target, creds, i, opts.tls));
  const hookChannel = new Channel(opts.hook, creds, TARGET_CHANNELS, opts.tls);
  return {
    target,
    hook: new Hook(hookChannel, opts.deadlineMs),
    close: () => {
      for (const c of target) c.close();
      hookChannel.close();
    },
  };
}
