/**
 * The dashboard (src/dashboard/) in a real browser: Debian's Chromium,
 * headless, driven by playwright-core, against the server started in-process
 * with the admin kubeconfig (and, for the refusal, a ServiceAccount's that may
 * not patch). Every wait is on the DOM or the API, none on a clock. With
 * KUBETX_UPDATE_SCREENSHOTS=1 it also saves docs/images/dashboard-*.png.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../src/dashboard/server.js';
import { clearFaults, setFault } from '../../examples/payment/faults.js';
import { dbPathIn } from '../../examples/payment/db.js';
import { loadKubeconfig, serviceAccountKubeconfig } from '../support/chart.js';
import { eventually, freshNamespace, kubeConfig, kubeconfigPath } from '../support/env.js';
import { startOperator, type OperatorProcess } from '../support/operator.js';
import { payOrder, startPayment, transactions, type PaymentServices } from '../support/payment.js';
import { repoRoot } from '../support/testenv-paths.js';

const CHROMIUM = process.env.KUBETX_CHROMIUM ?? '/usr/bin/chromium';
const screenshots = process.env.KUBETX_UPDATE_SCREENSHOTS === '1';

let kc: k8s.KubeConfig;
let ns: string;
let pay: PaymentServices;
let operator: OperatorProcess | undefined;
let dashboard: Dashboard | undefined;
let browser: Browser | undefined;
let page: Page;
let txs: ReturnType<typeof transactions>;
const extra: Dashboard[] = [];

/** The little of the DOM that functions run in the page use (this file is type-checked without DOM types). */
interface Dom {
  document: { querySelectorAll(s: string): { length: number } };
  requestAnimationFrame(cb: (t: number) => void): number;
}

const base = (d: Dashboard) => d.url.replace(/\?token=.*$/, '');
const row = (name: string, phase?: string) => `tr[data-testid="tx-row"][data-key="${ns}/${name}"]${phase ? `[data-phase="${phase}"]` : ''}`;
async function shot(p: Page, name: string, fullPage = true): Promise<void> {
  if (screenshots) await p.screenshot({ path: join(repoRoot, 'docs/images', `dashboard-${name}.png`), fullPage });
}

beforeAll(async () => {
  if (!existsSync(join(repoRoot, 'dist/dashboard/index.html'))) throw new Error('no UI build: run npm run build:dashboard');
  kc = kubeConfig();
  ns = await freshNamespace(kc, 'dash');
  txs = transactions(kc);
  pay = await startPayment();
  pay.addOrders([4001, 4002, 4003]);
  operator = await startOperator({ kubeconfig: kubeconfigPath(), namespaces: [ns] });
  dashboard = await startDashboard({ kc, port: 0, namespace: ns });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(dashboard.url);
});

afterAll(async () => {
  await browser?.close();
  for (const d of extra) await d.close();
  await dashboard?.close();
  await operator?.kill();
  await pay?.stopAll();
});

describe('dashboard in Chromium', () => {
  it('the list updates live: a new transaction appears and turns Committed', async () => {
    await page.waitForSelector('.dot.ok');
    await txs.create(payOrder(pay, { name: 'live-one', namespace: ns, orderId: 1001 }));
    await page.waitForSelector(row('live-one'), { timeout: 30_000 });
    await page.waitForSelector(row('live-one', 'Committed'), { timeout: 60_000 });
    await txs.create(payOrder(pay, { name: 'live-two', namespace: ns, orderId: 1002, mode: 'Saga' }));
    await page.waitForSelector(row('live-two', 'Completed'), { timeout: 60_000 });
    expect(await page.textContent('[data-testid="count-all"]')).toBe('2');
  });

  it('filters by text and by phase hide the other rows', async () => {
    await page.fill('input[aria-label="search"]', 'live-two');
    await page.waitForSelector(row('live-one'), { state: 'detached' });
    expect(await page.locator('tr[data-testid="tx-row"]').count()).toBe(1);
    await page.fill('input[aria-label="search"]', '');
    await page.selectOption('select[aria-label="phase"]', 'Committed');
    await page.waitForSelector(row('live-two'), { state: 'detached' });
    expect(await page.locator(row('live-one')).count()).toBe(1);
    await page.selectOption('select[aria-label="mode"]', 'Saga');
    await page.waitForSelector('p.empty');
    await page.selectOption('select[aria-label="phase"]', '');
    await page.selectOption('select[aria-label="mode"]', '');
    await page.waitForSelector(row('live-two'));
  });

  it('a Failed transaction: attempts and last error shown, needs attention; Retry brings it to Committed', async () => {
    const credit = dbPathIn(pay.dir, 'credit');
    setFault(credit, { method: 'Confirm', mode: 'fail', message: 'credit ledger locked' });
    try {
      await txs.create(payOrder(pay, {
        name: 'confirm-budget', namespace: ns, orderId: 4001,
        retry: { initialInterval: '100ms', maxInterval: '200ms', multiplier: 2, maxAttempts: 3 },
      }));
      await page.waitForSelector(row('confirm-budget', 'Failed'), { timeout: 60_000 });
      await shot(page, 'list');
      await page.click('a[href="#/attention"]');
      await page.waitForSelector(row('confirm-budget'));
      expect(await page.textContent(row('confirm-budget'))).toMatch(/Failed/);
      await shot(page, 'attention');

      await page.click(`${row('confirm-budget')} a`);
      const credits = page.locator('tr[data-testid="branch-row"][data-branch="credit"]');
      await credits.waitFor();
      expect(await credits.locator('[data-testid="attempts"]').textContent()).toBe('3');
      expect(await credits.textContent()).toMatch(/credit ledger locked/);
      // The per-call history, where the operator records it (status.branches[].history).
      const live = await txs.get(ns, 'confirm-budget');
      const history = (live.status?.branches?.find((b) => b.name === 'credit') as { history?: unknown[] } | undefined)?.history;
      if (history?.length) {
        const calls = page.locator('tr[data-testid="branch-row"][data-branch="credit"] + tr [data-testid="calls"]');
        await calls.waitFor();
        expect(await calls.textContent()).toMatch(/Confirm/);
      }
      await page.waitForSelector('[data-testid="events"]');
      expect(await page.textContent('[data-testid="events"]')).toMatch(/RetryBudgetExhausted/);
      await shot(page, 'transaction-failed');
    } finally {
      clearFaults(credit);
    }
    await page.click('[data-testid="retry"]');
    await page.waitForSelector('[data-testid="action-answer"].ok');
    expect(await page.textContent('[data-testid="action-answer"]')).toMatch(/retry requested/);
    await page.waitForSelector('h1 .phase-Committed', { timeout: 60_000 });
    await page.waitForSelector('[data-testid="ack"]:has-text("acknowledged")');
    // The retry reset the budget: the branch row now says how many attempts in all.
    expect(await page.locator('tr[data-testid="branch-row"][data-branch="credit"] [data-testid="attempts"]').textContent()).toMatch(/in all/);
    expect(await page.locator('[data-testid="result"]').count()).toBeGreaterThanOrEqual(0);
    await shot(page, 'transaction');
  });

  it('Abort after the decision: the request is accepted, then the operator’s refusal is shown (a live AbortRefused Event)', async () => {
    await page.fill('input[aria-label="abort reason"]', 'too late');
    await page.click('[data-testid="abort"]');
    await page.waitForSelector('[data-testid="action-answer"]:has-text("abort requested")');
    await page.waitForSelector('[data-testid="ack"]:has-text("refused by the operator")', { timeout: 30_000 });
    expect(await page.textContent('[data-testid="ack"]')).toMatch(/already (decided|Committed)/);
    expect(await page.textContent('[data-testid="events"]')).toMatch(/AbortRefused/);
  });

  it('a user whose RBAC forbids patch sees Retry refused with the API server’s message', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'viewer' } } });
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'dtx-viewer' },
        rules: [
          { apiGroups: ['kubetx.io'], resources: ['distributedtransactions'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['list', 'watch'] },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: { metadata: { name: 'dtx-viewer' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'dtx-viewer' }, subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }] },
    });
    const { path } = await serviceAccountKubeconfig(kc, ns, 'viewer');
    const viewerKc = loadKubeconfig(path);
    // RBAC objects take effect asynchronously: wait until the viewer may list (and still may not patch).
    await eventually('the viewer Role to take effect', async () => ((await transactions(viewerKc).list(ns)).length ? true : undefined));
    const viewer = await startDashboard({ kc: viewerKc, port: 0, namespace: ns });
    extra.push(viewer);
    const p = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await p.goto(viewer.url);
      await p.waitForSelector('[data-testid="counts"]'); // the app is up (and has the cookie) before the route changes
      await p.goto(`${base(viewer)}#/tx/${ns}/live-one`);
      await p.waitForSelector('[data-testid="retry"]').catch(async (err: unknown) => {
        throw new Error(`${String(err)}\npage: ${await p.content()}`);
      });
      await p.click('[data-testid="retry"]');
      await p.waitForSelector('[data-testid="action-answer"].refused');
      const text = (await p.textContent('[data-testid="action-answer"]')) ?? '';
      expect(text).toMatch(/refused \(403\)/);
      expect(text).toMatch(/system:serviceaccount:.*:viewer.*cannot patch resource "distributedtransactions"/);
      await shot(p, 'refused');
    } finally {
      await p.close();
    }
  });

  it('API: no cookie, no token header, or a foreign Host is refused', async () => {
    const b = base(dashboard!);
    expect((await fetch(`${b}api/config`)).status).toBe(401);
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    expect((await fetch(`${b}api/config`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${b}api/transactions/${ns}/live-one/retry`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    const rebound = await new Promise<number>((resolve, reject) => {
      request(`${b}api/config`, { headers: { cookie, host: 'evil.example' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end();
    });
    expect(rebound).toBe(421);
    const ro = await startDashboard({ kc, port: 0, namespace: ns, readOnly: true });
    extra.push(ro);
    expect((await fetch(`${ro.url}api/transactions/${ns}/live-one/retry`, { method: 'POST' })).status).toBe(405);
  });

  it('first render of a list of 1,000 transactions (measured in the browser)', async () => {
    const scratch = await freshNamespace(kc, 'dash-1k');
    const n = 1000;
    let next = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++) await txs.create(payOrder(pay, { name: `bulk-${String(i).padStart(4, '0')}`, namespace: scratch, orderId: 9000 + i }));
    }));
    const createMs = Date.now() - t0;
    const big = await startDashboard({ kc, port: 0, namespace: scratch });
    extra.push(big);
    const p = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await p.goto(big.url);
      await p.waitForFunction((want) => (globalThis as unknown as Dom).document.querySelectorAll('tr[data-testid="tx-row"]').length === want, n, { timeout: 60_000 });
      // Measured again from a fresh navigation (the cookie is set): performance.now() counts from navigation start.
      await p.goto(`${base(big)}#/`);
      await p.reload();
      const ms = await p.evaluate(async (want) => {
        const w = globalThis as unknown as Dom;
        while (w.document.querySelectorAll('tr[data-testid="tx-row"]').length !== want) await new Promise((r) => w.requestAnimationFrame(r));
        return performance.now();
      }, n);
      expect(await p.textContent('[data-testid="count-all"]')).toBe(String(n));
      console.log(`[dashboard] ${n} transactions: created in ${createMs} ms; list rendered ${Math.round(ms)} ms after navigation`);
      await shot(p, 'list-1000', false);
    } finally {
      await p.close();
    }
  });
});
