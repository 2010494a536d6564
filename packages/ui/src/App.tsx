// The inspector page: toolbar (filter, pause, clear), the live exchange list, and the detail pane.
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { PAUSED_COUNT_CAP } from '../../core/src/inspector/protocol.js';
import { liveUrl } from './api/live-client.js';
import { DetailPane } from './detail/DetailPane.js';
import { EmptyState } from './EmptyState.js';
import { FilterBox } from './filter/FilterBox.js';
import { ExchangeList } from './list/ExchangeList.js';
import { Session } from './store/session.js';
import { DEFAULT_SORT, type SortKey, type SortSpec } from './store/sort.js';

export function App() {
  const session = useMemo(() => new Session(liveUrl(window.location)), []);
  useEffect(() => {
    session.start();
    (window as unknown as { hopscope?: Session }).hopscope = session;
    return () => session.dispose();
  }, [session]);
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const store = session.store;
  useSyncExternalStore(store.subscribe.bind(store), () => store.version);
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [sort, setSort] = useState<SortSpec>(DEFAULT_SORT);

  const onSort = useCallback(
    (key: SortKey) => {
      const next: SortSpec = sort.key === key ? { key, dir: sort.dir === 'asc' ? 'desc' : 'asc' } : { key, dir: 'asc' };
      setSort(next);
      store.setSort(next);
    },
    [sort, store],
  );
  const onApplyFilter = useCallback((filter: string) => session.setFilter(filter), [session]);
  const onSelect = useCallback((id: number | null) => setSelectedId(id), []);
  const onClose = useCallback(() => setSelectedId(null), []);
  const paused = state.status === 'paused';
  const selectedRow = selectedId === null ? undefined : store.byId.get(selectedId);
  const connectionVersion = selectedRow ? session.connectionVersion(selectedRow.connectionId) : 0;

  return (
    <div className={`app${selectedId !== null ? ' with-detail' : ''}`}>
      <header className="toolbar">
        <div className="brand" title="hopscope inspector">
          <span className="logo" aria-hidden>◎</span> hopscope
        </div>
        <FilterBox applied={state.filter} onApply={onApplyFilter} serverError={state.filterError} />
        <div className="actions">
          <button onClick={() => (paused ? session.resume() : session.pause())} aria-pressed={paused} title={paused ? 'Resume live updates' : 'Pause live updates'}>
            {paused ? `▶ Resume${pausedCount(state.pausedNew)}` : '❚❚ Pause'}
          </button>
          <a
            className="button"
            href={`/api/har${state.filter ? `?filter=${encodeURIComponent(state.filter)}` : ''}`}
            download
            title={state.filter ? 'Download the exchanges matching the filter as HAR' : 'Download all exchanges as HAR'}
          >
            ⤓ HAR
          </a>
          <button
            onClick={() => {
              session.clear();
              setSelectedId(null);
            }}
            title="Clear the list (the capture file keeps everything)"
          >
            Clear
          </button>
        </div>
      </header>
      <main className="panes">
        <section className="list-pane">
          {store.size === 0 ? (
            <EmptyState info={state.info} filter={state.filter} paused={paused} />
          ) : (
            <ExchangeList store={store} selectedId={selectedId} onSelect={onSelect} sort={sort} onSort={onSort} />
          )}
        </section>
        {selectedId !== null ? <DetailPane id={selectedId} row={selectedRow} connectionVersion={connectionVersion} info={state.info} onClose={onClose} onSelect={onSelect} /> : null}
      </main>
      <footer className="statusbar">
        <span className={`live-dot ${state.status}`} aria-hidden />
        <span className="live-status">{{ connecting: 'connecting…', live: 'live', paused: 'paused', offline: 'reconnecting…' }[state.status]}</span>
        <span className="count" data-testid="row-count">
          {store.size.toLocaleString()} {store.size === 1 ? 'exchange' : 'exchanges'}
          {state.filter ? ' matching' : ''}
        </span>
        {state.backfilling ? <span className="muted">loading older…</span> : null}
        <span className="spacer" />
        {state.info?.proxyUrl ? <span className="muted">proxy {state.info.proxyUrl}</span> : null}
      </footer>
    </div>
  );
}

/** " · 3 new" on the Resume button: what the paused view is not showing yet. */
function pausedCount(n: number): string {
  if (n === 0) return '';
  return ` · ${n >= PAUSED_COUNT_CAP ? `${PAUSED_COUNT_CAP}+` : n} new`;
}
