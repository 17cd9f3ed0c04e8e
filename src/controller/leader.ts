/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 * the leader renews every `retryMs`; if it cannot renew for `renewDeadlineMs`
 * it stops leading (the process exits, so nothing reconciles without the
 * lease). Others take over once they have seen the same lease record
 * unchanged for `leaseMs` — judged on their own clock from when they saw it,
 * never by comparing timestamps across machines. Every write carries the
 * resourceVersion it read, so two candidates cannot both win.
 */
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorText } from './status-writer.js';
import { setLongTimeout, sleep, type LongTimer } from './timers.js';
import { createdSpec, heldSpec, LeaseObserver, releasedSpec } from './lease-record.js';

export interface LeaderElectionOptions {
  kubeConfig: k8s.KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  /** @default 15000 */
  leaseMs: number;
  /** @default 10000 */
  renewDeadlineMs: number;
  /** @default 2000 */
  retryMs: number;
  logger: Logger;
  onLeading: (leading: boolean) => void;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly observer = new LeaseObserver();
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private timer?: LongTimer;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.api = opts.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
  }

  /** Resolves when this candidate becomes the leader. */
  async acquire(): Promise<void> {
    const { logger, retryMs } = this.opts;
    logger.info({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity }, 'waiting for leadership');
    while (!this.stopped) {
      if (await this.tryAcquireOrRenew().catch((err) => (logger.warn({ err: errorText(err) }, 'lease update failed'), false))) {
        this.leading = true;
        if (this.stopped) {
          // SIGTERM arrived while this acquisition was in flight: give it back at once.
          await this.releaseLease();
          return;
        }
        this.lastRenew = Date.now();
        this.opts.onLeading(true);
        logger.info({ identity: this.opts.identity }, 'became leader');
        this.keepRenewing();
        return;
      }
      await sleep(retryMs);
    }
  }

  /** Gives the lease up so a successor need not wait for it to expire (on SIGTERM). */
  async release(): Promise<void> {
    this.stopped = true;
    this.timer?.clear();
    await this.releaseLease();
  }

  private async releaseLease(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = releasedSpec(lease.spec, Date.now());
      await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
      this.opts.logger.info('released leadership');
    } catch (err) {
      this.opts.logger.warn({ err: errorText(err) }, 'could not release the lease');
    }
  }

  private keepRenewing(): void {
    const tick = async () => {
      if (this.stopped) return;
      const ok = await this.tryAcquireOrRenew().catch(() => false);
      if (ok) this.lastRenew = Date.now();
      if (Date.now() - this.lastRenew > this.opts.renewDeadlineMs) {
        this.leading = false;
        this.opts.logger.error({ renewDeadlineMs: this.opts.renewDeadlineMs }, 'lost leadership: lease not renewed in time');
        this.opts.onLeading(false);
        return;
      }
      this.timer = setLongTimeout(() => void tick(), this.opts.retryMs, Date.now, true);
    };
    this.timer = setLongTimeout(() => void tick(), this.opts.retryMs, Date.now, true);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseMs } = this.opts;
    const now = Date.now();
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await this.api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: createdSpec(identity, leaseMs, now),
        },
      });
      return true;
    }
    const expired = this.observer.expired(name, lease.spec, now, leaseMs);
    if (lease.spec?.holderIdentity !== identity && !expired) return false;
    lease.spec = heldSpec(lease.spec, identity, leaseMs, now);
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 409) return false;
      throw err;
    }
  }
}
