/**
 * The dashboard's browser side: one Server-Sent Events stream (/api/stream)
 * keeps every transaction in memory; three pages read it: the live list,
 * "needs attention", and one transaction. Routing is the URL hash.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Condition, DistributedTransaction } from '../../api/types.js';
import { age, attentionReasons, callColumns, callsOf, countByPhase, decodeResult, key, matches, noFilters, phaseOf, startedAt, type Filters, type Tx } from './model.js';
import './style.css';

interface Config {
  readOnly: boolean;
  context: string;
  namespace: string | null;
  token: string | null;
}

interface Store {
  txs: Map<string, Tx>;
  connected: boolean;
  error: string | null;
  /** Bumped on every change, so memos recompute. */
  version: number;
}

const MODES = ['TCC', 'Saga', 'Message', 'Notify'];

function useStore(): Store {
  const [store, setStore] = useState<Store>({ txs: new Map(), connected: false, error: null, version: 0 });
  useEffect(() => {
    const txs = new Map<string, Tx>();
    let version = 0;
    let scheduled = false;
    const publish = (patch: Partial<Store> = {}) => {
      version++;
      if (scheduled && !Object.keys(patch).length) return;
      scheduled = true;
      // Coalesce bursts of watch events into one render per frame.
      requestAnimationFrame(() => {
        scheduled = false;
        setStore((s) => ({ ...s, ...patch, txs, version }));
      });
    };
    const es = new EventSource('/api/stream');
    es.addEventListener('snapshot', (e) => {
      const { items } = JSON.parse((e as MessageEvent<string>).data) as { items: Tx[] };
      txs.clear();
      for (const tx of items) txs.set(key(tx), tx);
      publish({ connected: true, error: null });
    });
    es.addEventListener('change', (e) => {
      const { type, object } = JSON.parse((e as MessageEvent<string>).data) as { type: string; object: Tx };
      if (type === 'DELETED') txs.delete(key(object));
      else txs.set(key(object), object);
      publish();
    });
    es.addEventListener('failure', (e) => {
      const { code, message } = JSON.parse((e as MessageEvent<string>).data) as { code: number; message: string };
      publish({ error: `${code}: ${message}` });
    });
    es.onerror = () => publish({ connected: false });
    return () => es.close();
  }, []);
  return store;
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    // A hash change between the first render and this effect fired no listener yet: read it now.
    on();
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

function App() {
  const [config, setConfig] = useState<Config | null>(null);
  const [configError, setConfigError] = useState<string | null>(null);
  const store = useStore();
  const hash = useHash();
  const now = useNow();
  useEffect(() => {
    fetch('/api/config')
      .then(async (r) => (r.ok ? setConfig((await r.json()) as Config) : setConfigError(((await r.json()) as { message: string }).message)))
      .catch((e: unknown) => setConfigError(String(e)));
  }, []);
  const [longMinutes, setLongMinutes] = useState(10);
  const attention = useMemo(() => [...store.txs.values()].filter((tx) => attentionReasons(tx, now, longMinutes).length), [store.version, now, longMinutes]);
  const route = hash.replace(/^#\/?/, '');
  const txMatch = /^tx\/([^/]+)\/([^/]+)$/.exec(route);
  let page;
  if (configError) page = <p class="error">{configError}</p>;
  else if (txMatch) page = <TxPage store={store} config={config} namespace={decodeURIComponent(txMatch[1]!)} name={decodeURIComponent(txMatch[2]!)} now={now} />;
  else if (route === 'attention') page = <AttentionPage txs={attention} now={now} longMinutes={longMinutes} setLongMinutes={setLongMinutes} />;
  else page = <ListPage store={store} now={now} />;
  return (
    <>
      <header>
        <span class="brand">kubetx</span>
        <nav>
          <a href="#/" class={!txMatch && route !== 'attention' ? 'active' : ''}>Transactions</a>
          <a href="#/attention" class={route === 'attention' ? 'active' : ''}>
            Needs attention <span class={`pill ${attention.length ? 'warn' : ''}`} data-testid="attention-count">{attention.length}</span>
          </a>
        </nav>
        <span class="meta">
          {config ? `${config.context || 'in-cluster'}${config.namespace ? ` · ${config.namespace}` : ''}${config.readOnly ? ' · read-only' : ''}` : ''}
          <span class={`dot ${store.connected ? 'ok' : 'down'}`} title={store.connected ? 'watching' : 'disconnected'} />
        </span>
      </header>
      {store.error && <p class="error" data-testid="stream-error">{store.error}</p>}
      <main>{page}</main>
    </>
  );
}

function PhaseBadge({ phase }: { phase: string }) {
  return <span class={`phase phase-${phase}`}>{phase}</span>;
}

function ListPage({ store, now }: { store: Store; now: number }) {
  const [f, setF] = useState<Filters>(noFilters);
  const all = useMemo(() => [...store.txs.values()], [store.version]);
  const namespaces = useMemo(() => [...new Set(all.map((t) => t.metadata.namespace))].sort(), [all]);
  const shown = useMemo(() => all.filter((t) => matches(t, f, now)).sort((a, b) => startedAt(b) - startedAt(a)), [all, f, now]);
  const counts = useMemo(() => countByPhase(all), [all]);
  const set = (patch: Partial<Filters>) => setF({ ...f, ...patch });
  return (
    <section>
      <div class="counts" data-testid="counts">
        <button class={!f.phase ? 'chip active' : 'chip'} onClick={() => set({ phase: '' })}>
          All <b data-testid="count-all">{all.length}</b>
        </button>
        {[...counts.entries()].sort().map(([p, n]) => (
          <button class={f.phase === p ? 'chip active' : 'chip'} onClick={() => set({ phase: f.phase === p ? '' : p })} data-phase={p}>
            <PhaseBadge phase={p} /> <b>{n}</b>
          </button>
        ))}
      </div>
      <div class="filters">
        <select aria-label="namespace" value={f.namespace} onChange={(e) => set({ namespace: e.currentTarget.value })}>
          <option value="">all namespaces</option>
          {namespaces.map((n) => <option value={n}>{n}</option>)}
        </select>
        <select aria-label="mode" value={f.mode} onChange={(e) => set({ mode: e.currentTarget.value })}>
          <option value="">all modes</option>
          {MODES.map((m) => <option value={m}>{m}</option>)}
        </select>
        <select aria-label="phase" value={f.phase} onChange={(e) => set({ phase: e.currentTarget.value })}>
          <option value="">all phases</option>
          {[...counts.keys()].sort().map((p) => <option value={p}>{p}</option>)}
        </select>
        <label>
          older than <input aria-label="minimum age in minutes" type="number" min="0" value={f.minAgeMinutes} onInput={(e) => set({ minAgeMinutes: Number(e.currentTarget.value) || 0 })} /> min
        </label>
        <input class="search" aria-label="search" type="search" placeholder="name, branch, error…" value={f.text} onInput={(e) => set({ text: e.currentTarget.value })} />
        <span class="meta" data-testid="shown-count">{shown.length} shown</span>
      </div>
      <TxTable txs={shown} now={now} />
    </section>
  );
}

function TxTable({ txs, now, reasons }: { txs: Tx[]; now: number; reasons?: (tx: Tx) => string[] }) {
  if (!txs.length) return <p class="empty">No transactions.</p>;
  return (
    <table class="list">
      <thead>
        <tr>
          <th>Name</th><th>Namespace</th><th>Mode</th><th>Phase</th><th>Progress</th><th>Age</th><th>{reasons ? 'Why' : 'Message'}</th>
        </tr>
      </thead>
      <tbody>
        {txs.map((tx) => (
          <tr key={key(tx)} data-testid="tx-row" data-key={key(tx)} data-phase={phaseOf(tx)}>
            <td><a href={`#/tx/${encodeURIComponent(tx.metadata.namespace)}/${encodeURIComponent(tx.metadata.name)}`}>{tx.metadata.name}</a></td>
            <td>{tx.metadata.namespace}</td>
            <td>{tx.spec.mode}</td>
            <td><PhaseBadge phase={phaseOf(tx)} /></td>
            <td>{tx.status?.progress ?? ''}</td>
            <td>{age(now - startedAt(tx))}</td>
            <td class="msg">{reasons ? reasons(tx).join('; ') : (tx.status?.message ?? '')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AttentionPage({ txs, now, longMinutes, setLongMinutes }: { txs: Tx[]; now: number; longMinutes: number; setLongMinutes: (n: number) => void }) {
  return (
    <section>
      <p class="hint">
        Failed, Stalled, running longer than{' '}
        <input aria-label="long-running minutes" type="number" min="1" value={longMinutes} onInput={(e) => setLongMinutes(Number(e.currentTarget.value) || 10)} /> min, or a branch with 5 or more attempts.
      </p>
      <TxTable txs={[...txs].sort((a, b) => startedAt(a) - startedAt(b))} now={now} reasons={(tx) => attentionReasons(tx, now, longMinutes)} />
    </section>
  );
}

interface ActionAnswer {
  ok: boolean;
  code: number;
  message: string;
}

async function post(config: Config | null, path: string, body: unknown): Promise<ActionAnswer> {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Kubetx-Token': config?.token ?? '' }, body: JSON.stringify(body) });
  const j = (await r.json().catch(() => ({ message: r.statusText }))) as { message?: string };
  return { ok: r.ok, code: r.status, message: j.message ?? r.statusText };
}

function TxPage({ store, config, namespace, name, now }: { store: Store; config: Config | null; namespace: string; name: string; now: number }) {
  const live = store.txs.get(`${namespace}/${name}`);
  const [fetched, setFetched] = useState<Tx | null>(null);
  const [fetchError, setFetchError] = useState<string | null>(null);
  const [events, setEvents] = useState<EventItem[] | null>(null);
  const [eventsError, setEventsError] = useState<string | null>(null);
  const [answer, setAnswer] = useState<ActionAnswer | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const base = `/api/transactions/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  // Outside the watched scope (or before the snapshot) the stream may not have it: read it once.
  useEffect(() => {
    if (live) return;
    fetch(base)
      .then(async (r) => (r.ok ? setFetched((await r.json()) as Tx) : setFetchError(`${r.status}: ${((await r.json()) as { message: string }).message}`)))
      .catch((e: unknown) => setFetchError(String(e)));
  }, [base, !!live]);
  const tx = live ?? fetched;
  // The transaction's Events, live: a list then a watch on the server (an SSE stream of its own).
  useEffect(() => {
    const byName = new Map<string, EventItem>();
    const publish = () => setEvents([...byName.values()]);
    const es = new EventSource(`${base}/events/stream`);
    es.addEventListener('snapshot', (e) => {
      byName.clear();
      for (const ev of (JSON.parse((e as MessageEvent<string>).data) as { items: EventItem[] }).items) byName.set(ev.metadata?.name ?? '', ev);
      publish();
    });
    es.addEventListener('change', (e) => {
      const { type, object } = JSON.parse((e as MessageEvent<string>).data) as { type: string; object: EventItem };
      if (type === 'DELETED') byName.delete(object.metadata?.name ?? '');
      else byName.set(object.metadata?.name ?? '', object);
      publish();
    });
    es.addEventListener('failure', (e) => {
      const { code, message } = JSON.parse((e as MessageEvent<string>).data) as { code: number; message: string };
      setEventsError(`${code}: ${message}`);
      setEvents((old) => old ?? []);
    });
    return () => es.close();
  }, [base]);
  if (!tx) return <p class={fetchError ? 'error' : 'empty'}>{fetchError ?? 'Loading…'}</p>;
  const s = tx.status ?? {};
  const act = async (what: 'retry' | 'abort') => {
    setBusy(true);
    try {
      setAnswer(await post(config, `${base}/${what}`, what === 'abort' ? { reason } : {}));
    } finally {
      setBusy(false);
    }
  };
  const retryAsked = tx.metadata.annotations?.['kubetx.io/retry'];
  const abortAsked = tx.metadata.annotations?.['kubetx.io/abort'];
  return (
    <section class="tx">
      <h1>
        <span class="ns">{tx.metadata.namespace}/</span>{tx.metadata.name} <PhaseBadge phase={phaseOf(tx)} />
      </h1>
      <dl class="facts">
        <dt>Mode</dt><dd>{tx.spec.mode}</dd>
        <dt>Decision</dt><dd>{s.decision ? `${s.decision} at ${s.decisionTime ?? '?'}` : '—'}</dd>
        <dt>Started</dt><dd>{s.startTime ?? tx.metadata.creationTimestamp ?? '?'} ({age(now - startedAt(tx))} ago)</dd>
        {s.completionTime && <><dt>Completed</dt><dd>{s.completionTime}</dd></>}
        {s.progress && <><dt>Progress</dt><dd>{s.progress}</dd></>}
        {s.message && <><dt>Message</dt><dd data-testid="tx-message">{s.message}</dd></>}
      </dl>

      {config && !config.readOnly && (
        <div class="actions">
          <button disabled={busy} onClick={() => void act('retry')} data-testid="retry">Retry</button>
          <input aria-label="abort reason" placeholder="reason for abort" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <button class="danger" disabled={busy || !reason.trim()} onClick={() => void act('abort')} data-testid="abort">Abort</button>
          {answer && <span class={answer.ok ? 'answer ok' : 'answer refused'} data-testid="action-answer">{answer.ok ? answer.message : `refused (${answer.code}): ${answer.message}`}</span>}
        </div>
      )}
      {(retryAsked || abortAsked) && (
        <p class="ack" data-testid="ack">
          {retryAsked && <>retry {retryAsked}: {ackText(s.retryAcknowledged === retryAsked, refusal(events, 'RetryRefused', s.interventionTime), s.interventionTime)}. </>}
          {abortAsked && <>abort “{abortAsked}”: {ackText(s.abortAcknowledged === abortAsked, refusal(events, 'AbortRefused', s.interventionTime), s.interventionTime)}.</>}
        </p>
      )}

      <h2>Branches</h2>
      <table class="branches">
        <thead>
          <tr><th>Branch</th><th>State</th><th>Attempts</th><th>Last attempt</th><th>Next attempt</th><th>Last error</th></tr>
        </thead>
        <tbody>
          {(s.branches ?? []).map((b) => {
            const calls = callsOf(b);
            const result = b.result ? decodeResult(b.result) : undefined;
            return (
              <>
                <tr data-testid="branch-row" data-branch={b.name}>
                  <td>{b.name}</td>
                  <td><PhaseBadge phase={b.state} /></td>
                  <td data-testid="attempts">{b.attempts}{b.totalAttempts !== undefined && b.totalAttempts !== b.attempts ? ` (${b.totalAttempts} in all)` : ''}</td>
                  <td>{b.lastAttemptTime ?? '—'}</td>
                  <td>{b.nextAttemptTime ?? '—'}</td>
                  <td class="msg">{b.lastError ?? ''}</td>
                </tr>
                {calls && calls.length > 0 && (
                  <tr class="sub"><td colSpan={6}><Calls calls={calls} /></td></tr>
                )}
                {result && (
                  <tr class="sub"><td colSpan={6}><div class="label">result ({result.kind})</div><pre data-testid="result">{result.text}</pre></td></tr>
                )}
              </>
            );
          })}
        </tbody>
      </table>

      <h2>Conditions</h2>
      <Conditions conditions={s.conditions ?? []} />

      <h2>Events</h2>
      {eventsError && <p class="error">{eventsError}</p>}
      <Events events={events} />

      <details>
        <summary>Spec</summary>
        <pre data-testid="spec">{JSON.stringify(tx.spec, null, 2)}</pre>
      </details>
    </section>
  );
}

/** The operator's refusal of the request it acted on last: a Warning Event (RetryRefused, AbortRefused) at or after interventionTime. */
function refusal(events: EventItem[] | null, reason: string, since: string | undefined): string | undefined {
  const t = Date.parse(since ?? '') - 1000;
  const hit = (events ?? []).filter((e) => e.reason === reason && !(Date.parse(String(e.eventTime ?? e.metadata?.creationTimestamp ?? '')) < t)).pop();
  return hit ? (hit.note ?? reason) : undefined;
}

function ackText(acked: boolean, refused: string | undefined, at: string | undefined): string {
  if (!acked) return 'waiting for the operator';
  return refused ? `refused by the operator: ${refused}` : `acknowledged${at ? ` at ${at}` : ''}`;
}

/** Per-call history (status.branches[].history): whatever fields each call has, as columns. */
function Calls({ calls }: { calls: Array<Record<string, unknown>> }) {
  const cols = callColumns(calls);
  return (
    <table class="calls" data-testid="calls">
      <thead><tr>{cols.map((c) => <th>{c}</th>)}</tr></thead>
      <tbody>
        {calls.map((c) => (
          <tr>{cols.map((k) => <td>{c[k] === undefined ? '' : typeof c[k] === 'object' ? JSON.stringify(c[k]) : String(c[k])}</td>)}</tr>
        ))}
      </tbody>
    </table>
  );
}

function Conditions({ conditions }: { conditions: Condition[] }) {
  if (!conditions.length) return <p class="empty">None.</p>;
  return (
    <table>
      <thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Since</th><th>Message</th></tr></thead>
      <tbody>
        {conditions.map((c) => (
          <tr data-testid="condition" data-type={c.type}><td>{c.type}</td><td>{c.status}</td><td>{c.reason}</td><td>{c.lastTransitionTime}</td><td class="msg">{c.message}</td></tr>
        ))}
      </tbody>
    </table>
  );
}

interface EventItem {
  eventTime?: string;
  deprecatedLastTimestamp?: string;
  metadata?: { name?: string; creationTimestamp?: string };
  type?: string;
  reason?: string;
  note?: string;
  series?: { count?: number };
}

function Events({ events }: { events: EventItem[] | null }) {
  if (!events) return <p class="empty">Loading…</p>;
  if (!events.length) return <p class="empty">None.</p>;
  const when = (e: EventItem) => String(e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata?.creationTimestamp ?? '');
  const sorted = [...events].sort((a, b) => when(a).localeCompare(when(b)));
  return (
    <table data-testid="events">
      <thead><tr><th>Time</th><th>Type</th><th>Reason</th><th>Note</th></tr></thead>
      <tbody>
        {sorted.map((e) => (
          <tr class={e.type === 'Warning' ? 'warning' : ''}><td>{when(e)}</td><td>{e.type}</td><td>{e.reason}{e.series?.count ? ` (×${e.series.count})` : ''}</td><td class="msg">{e.note}</td></tr>
        ))}
      </tbody>
    </table>
  );
}

export type { DistributedTransaction };
render(<App />, document.getElementById('app')!);
