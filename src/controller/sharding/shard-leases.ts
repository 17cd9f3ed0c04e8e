/**
 * Shard ownership on coordination.k8s.io/v1 Leases: one Lease per shard
 * (`<prefix>-<i>`) and one membership Lease per replica
 * (`<prefix>-replica-<identity>`), all labelled kubetx.io/shard-set=<prefix>.
 *
 * Every `retryMs` a replica lists those Leases (one request), renews its
 * membership and the shards it holds, gives back shards above its fair share
 * and takes free ones up to it (plan.ts). Expiry is judged as leader election
 * judges it (lease-record.ts): a record seen unchanged for its lease duration on
 * this replica's clock, never by comparing timestamps across machines. Every
 * write carries the resourceVersion it read, so two replicas cannot both take
 * a shard.
 *
 * Changing --shards: ranges depend on the count, so while live replicas
 * disagree on it (a rollout) nobody takes new shards — each keeps renewing
 * what it holds and gives back extras — and a shard Lease written under
 * another count counts as held until it expires. Once the old replicas are
 * gone their Leases expire (or were released on SIGTERM) and the new count
 * takes over; Leases beyond the new count are deleted once free.
 *
 * Fencing: `owns(shard)` turns false as soon as the shard's last successful
 * renewal is older than `renewDeadlineMs` — before anyone else may take it
 * (renewDeadline < leaseDuration) — so a replica that was frozen stops
 * reconciling the shard the moment it wakes, before its first renewal.
 */
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorText } from '../status-writer.js';
import { setLongTimeout, type LongTimer } from '../timers.js';
import type { OperatorMetrics } from '../metrics.js';
import { planShards } from './plan.js';
import { createdSpec, heldSpec, LeaseObserver, releasedSpec } from '../lease-record.js';

export const SHARD_SET_LABEL = 'kubetx.io/shard-set';
export const LEASE_KIND_LABEL = 'kubetx.io/lease-kind';
/** On every Lease of the set: the --shards its writer uses (a shard's range depends on it). */
export const SHARDS_ANNOTATION = 'kubetx.io/shards';

export interface ShardLeaseOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  prefix: string;
  shards: number;
  identity: string;
  leaseMs: number;
  renewDeadlineMs: number;
  retryMs: number;
  logger: Logger;
  /** A shard became ours: start working on it. */
  onAcquired: (shard: number) => void;
  /** We are about to give a shard back (or have lost it): stop working on it before the Lease is released. */
  onReleased: (shard: number, how: 'released' | 'lost') => Promise<void>;
  /** Live replicas seen (itself included), after each round. */
  metrics?: OperatorMetrics;
  now?: () => number;
}

/** Lease names are DNS subdomains; a pod name already is one, anything else is made one. */
export function memberLeaseName(prefix: string, identity: string): string {
  const clean = identity.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 180);
  const exact = clean === identity;
  return `${prefix}-replica-${clean || 'x'}${exact ? '' : `-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`}`;
}

export const shardLeaseName = (prefix: string, shard: number) => `${prefix}-${shard}`;

/** Expired member Leases older than this many lease durations are deleted by whoever sees them. */
const MEMBER_GC_DURATIONS = 5;

export class ShardLeases {
  private readonly api: k8s.CoordinationV1Api;
  private readonly observer = new LeaseObserver();
  /** Shards we hold → when their Lease was last renewed. */
  private readonly owned = new Map<number, number>();
  /** Orphans taken above the fair share (plan.ts): given back first. */
  private readonly extras = new Set<number>();
  private timer?: LongTimer;
  private stopped = false;
  private round?: Promise<void>;
  private mixedWarned = false;
  private readonly now: () => number;

  constructor(private readonly opts: ShardLeaseOptions) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    this.now = opts.now ?? Date.now;
    for (let s = 0; s < opts.shards; s++) opts.metrics?.shardOwned.set({ shard: String(s) }, 0);
    for (const change of ['acquired', 'released', 'lost']) opts.metrics?.shardTransitions.inc({ change }, 0);
  }

  private counted(shard: number, change: 'acquired' | 'released' | 'lost'): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.shardTransitions.inc({ change });
    m.shardOwned.set({ shard: String(shard) }, change === 'acquired' ? 1 : 0);
    m.shardsOwned.set(this.owned.size);
  }

  /** Whether this replica may act on `shard` now (held and renewed within the renew deadline). */
  owns(shard: number): boolean {
    const renewed = this.owned.get(shard);
    return renewed !== undefined && this.now() - renewed <= this.opts.renewDeadlineMs;
  }

  /** Runs the first round (so a lone replica starts with its shards), then one every retryMs. */
  async start(): Promise<void> {
    this.opts.logger.info({ shards: this.opts.shards, lease: `${this.opts.namespace}/${this.opts.prefix}-*`, identity: this.opts.identity }, 'joining the shard set');
    await this.runRound();
    this.schedule();
  }

  /** Gives every shard back and deletes the membership Lease, so others take over at once (on SIGTERM). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.clear();
    await this.round;
    const leases = await this.list().catch(() => [] as k8s.V1Lease[]);
    await Promise.all(
      [...this.owned.keys()].map(async (shard) => {
        await this.opts.onReleased(shard, 'released');
        const lease = leases.find((l) => l.metadata?.name === shardLeaseName(this.opts.prefix, shard));
        if (lease) await this.release(lease).catch(() => undefined);
        this.owned.delete(shard);
        this.counted(shard, 'released');
      }),
    );
    await this.api.deleteNamespacedLease({ name: memberLeaseName(this.opts.prefix, this.opts.identity), namespace: this.opts.namespace }).catch(() => undefined);
    this.opts.logger.info('left the shard set');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setLongTimeout(() => {
      void this.runRound().finally(() => this.schedule());
    }, this.opts.retryMs, Date.now, true);
  }

  private runRound(): Promise<void> {
    this.round = this.oneRound().catch((err) => this.opts.logger.warn({ err: errorText(err) }, 'shard round failed'));
    return this.round;
  }

  private async list(): Promise<k8s.V1Lease[]> {
    const res = await this.api.listNamespacedLease({ namespace: this.opts.namespace, labelSelector: `${SHARD_SET_LABEL}=${this.opts.prefix}` });
    return res.items;
  }

  private async oneRound(): Promise<void> {
    const { prefix, shards, identity, leaseMs } = this.opts;
    const leases = await this.list();
    const now = this.now();
    const byName = new Map(leases.map((l) => [l.metadata?.name ?? '', l]));
    const expired = (l: k8s.V1Lease) => this.observer.expired(l.metadata?.name ?? '', l.spec, now, leaseMs);
    this.observer.keepOnly(new Set(byName.keys()));

    // Membership first: others learn of this replica from it.
    const memberName = memberLeaseName(prefix, identity);
    await this.renewOrCreate(byName.get(memberName), memberName, 'replica');
    const members: string[] = [];
    const otherCounts = new Set<string>();
    for (const l of leases) {
      if (l.metadata?.labels?.[LEASE_KIND_LABEL] !== 'replica' || l.metadata.name === memberName) continue;
      if (!expired(l)) {
        members.push(l.spec!.holderIdentity!);
        const count = l.metadata.annotations?.[SHARDS_ANNOTATION];
        if (count !== String(shards)) otherCounts.add(count ?? 'unknown');
      }
      else if (now - (this.observer.since(l.metadata.name!) ?? now) > MEMBER_GC_DURATIONS * leaseMs) {
        await this.api.deleteNamespacedLease({ name: l.metadata.name!, namespace: this.opts.namespace }).catch(() => undefined);
      }
    }
    this.opts.metrics?.shardReplicas.set(new Set([...members, identity]).size);

    if (otherCounts.size > 0 && !this.mixedWarned) {
      this.opts.logger.warn({ shards, others: [...otherCounts] }, 'live replicas use another --shards: taking no new shard until they are gone');
    }
    this.mixedWarned = otherCounts.size > 0;

    const holders = new Map<number, string | undefined>();
    const orphans = new Set<number>();
    const live = new Set([...members, identity]);
    for (let s = 0; s < shards; s++) {
      const l = byName.get(shardLeaseName(prefix, s));
      const holder = l?.spec?.holderIdentity;
      // Ours stays ours while we hold it, however long since we last renewed: the renew decides.
      holders.set(s, !l ? undefined : holder === identity ? identity : expired(l) ? undefined : holder);
      if (l && holder && holder !== identity && holders.get(s) === undefined && !live.has(holder)) orphans.add(s);
      if (this.owned.has(s) && holder !== identity) await this.lose(s, `the Lease names ${holder || 'no holder'}`);
    }
    // Shards of a larger count than ours: delete once nobody holds them.
    for (const l of leases) {
      const m = l.metadata?.labels?.[LEASE_KIND_LABEL] === 'shard' ? /-(\d+)$/.exec(l.metadata.name ?? '') : null;
      if (m && Number(m[1]) >= shards && expired(l) && otherCounts.size === 0) {
        await this.api.deleteNamespacedLease({ name: l.metadata!.name!, namespace: this.opts.namespace }).catch(() => undefined);
      }
    }
    for (const s of this.extras) if (!this.owned.has(s)) this.extras.delete(s);
    const plan = planShards({ self: identity, members, shards, holders, orphans, extras: this.extras });
    if (otherCounts.size > 0) plan.acquire = [];

    await Promise.all(
      [...holders].filter(([s, h]) => h === identity && !plan.release.includes(s)).map(async ([s]) => {
        const ok = await this.renewOrCreate(byName.get(shardLeaseName(prefix, s)), shardLeaseName(prefix, s), 'shard');
        if (ok) this.markHeld(s, 'renewed');
      }),
    );
    // In parallel: each waits (bounded) for its reconciles under way, and the round must end within the renew deadline.
    await Promise.all(
      plan.release.map(async (s) => {
        await this.opts.onReleased(s, 'released');
        this.owned.delete(s);
        this.counted(s, 'released');
        await this.release(byName.get(shardLeaseName(prefix, s))!).catch((err) => this.opts.logger.warn({ shard: s, err: errorText(err) }, 'could not release the shard Lease'));
        this.opts.logger.info({ shard: s, target: plan.target }, 'released shard');
      }),
    );
    await Promise.all(
      plan.acquire.map(async (s) => {
        if (await this.renewOrCreate(byName.get(shardLeaseName(prefix, s)), shardLeaseName(prefix, s), 'shard')) {
          if (plan.extras.includes(s)) this.extras.add(s);
          this.markHeld(s, 'acquired');
        }
      }),
    );
    // Not renewed in time: stop acting on it (owns() already says no) and say so.
    for (const [s, renewed] of this.owned) {
      if (this.now() - renewed > this.opts.renewDeadlineMs) await this.lose(s, `not renewed for ${this.now() - renewed} ms`);
    }
  }

  private markHeld(shard: number, how: 'renewed' | 'acquired'): void {
    const first = !this.owned.has(shard);
    // Renewed, but later than the renew deadline: meanwhile owns() said no, so
    // watch events and finished calls of the shard were dropped. Resume it as if new.
    const lapsed = !first && !this.owns(shard);
    this.owned.set(shard, this.now());
    if (first) {
      this.opts.logger.info({ shard, how }, 'acquired shard');
      this.counted(shard, 'acquired');
      this.opts.onAcquired(shard);
    } else if (lapsed) {
      this.opts.logger.warn({ shard, renewDeadlineMs: this.opts.renewDeadlineMs }, 'shard renewed after its renew deadline: resuming its transactions');
      this.opts.onAcquired(shard);
    }
  }

  private async lose(shard: number, why: string): Promise<void> {
    if (!this.owned.has(shard)) return;
    this.owned.delete(shard);
    this.counted(shard, 'lost');
    this.opts.logger.warn({ shard, why }, 'lost shard');
    await this.opts.onReleased(shard, 'lost');
  }

  /** Takes or renews a Lease for this replica; false when another writer got there first. */
  private async renewOrCreate(lease: k8s.V1Lease | undefined, name: string, kind: 'shard' | 'replica'): Promise<boolean> {
    const { namespace, identity, leaseMs, prefix } = this.opts;
    const now = this.now();
    try {
      if (!lease) {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace, labels: { [SHARD_SET_LABEL]: prefix, [LEASE_KIND_LABEL]: kind }, annotations: { [SHARDS_ANNOTATION]: String(this.opts.shards) } },
            spec: createdSpec(identity, leaseMs, now),
          },
        });
        return true;
      }
      lease.metadata = { ...lease.metadata, annotations: { ...lease.metadata?.annotations, [SHARDS_ANNOTATION]: String(this.opts.shards) } };
      lease.spec = heldSpec(lease.spec, identity, leaseMs, now);
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      lease.metadata = updated.metadata;
      return true;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409 || code === 404) return false;
      this.opts.logger.warn({ lease: name, err: errorText(err) }, 'lease write failed');
      return false;
    }
  }

  private async release(lease: k8s.V1Lease): Promise<void> {
    if (lease.spec?.holderIdentity !== this.opts.identity) return;
    lease.spec = releasedSpec(lease.spec, this.now());
    await this.api.replaceNamespacedLease({ name: lease.metadata!.name!, namespace: this.opts.namespace, body: lease });
  }
}
