/**
 * One gRPC channel per participant endpoint, shared by every transaction and
 * every service on it (a participant serves TccParticipant, SagaParticipant,
 * ... on one port). Channels idle for `idleMs` are closed.
 */
import { Client, credentials, type ChannelCredentials } from '@grpc/grpc-js';

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

interface Entry {
  client: Client;
  lastUsed: number;
}

/** Every channel's options (bench/grpc-calls.ts measures calls on a channel built with these). */
export const CHANNEL_OPTIONS: Readonly<Record<string, number>> = {
  // Fail fast on a dead peer rather than waiting for TCP timeouts.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.max_receive_message_length': 1 << 20,
};

export class ChannelPool {
  private readonly channels = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly idleMs = 300_000) {
    this.sweeper = setInterval(() => this.closeIdle(), Math.min(idleMs, 60_000));
    this.sweeper.unref();
  }

  /** `authority`: the name the call is for (a Service's DNS name when `target` is one of its pods' IPs). */
  get(target: string, tls?: { material: TlsMaterial; serverName?: string; secretVersion: string }, authority?: string): Client {
    const key = `${target}|${authority ?? ''}${tls ? `|tls|${tls.serverName ?? ''}|${tls.secretVersion}` : ''}`;
    let entry = this.channels.get(key);
    if (!entry) {
      const creds: ChannelCredentials = tls
        ? credentials.createSsl(tls.material.ca ?? null, tls.material.key ?? null, tls.material.cert ?? null)
        : credentials.createInsecure();
      const options: Record<string, string | number> = { ...CHANNEL_OPTIONS };
      if (tls?.serverName) options['grpc.ssl_target_name_override'] = tls.serverName;
      if (authority) options['grpc.default_authority'] = authority;
      entry = { client: new Client(target, creds, options), lastUsed: Date.now() };
      this.channels.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry.client;
  }

  get size(): number {
    return this.channels.size;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const e of this.channels.values()) e.client.close();
    this.channels.clear();
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const [key, e] of this.channels) {
      if (e.lastUsed < cutoff) {
        e.client.close();
        this.channels.delete(key);
      }
    }
  }
}
