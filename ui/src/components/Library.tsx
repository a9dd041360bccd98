import { useEffect, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { DocEntry, DocStatus } from '../ipc';
import { basename, estimateRemaining, formatDuration } from '../format';
import { ConfirmButton, ErrorNote } from './common';
import type { Ingest } from './useIngest';
import { fractionDone } from './useIngest';
import type { ViewTarget } from './types';
import { SummaryPanel, type SummarySubject } from './SummaryPanel';

const STATUS_LABEL: Record<DocStatus, string> = {
  indexed: 'indexed',
  no_text_layer: 'no text layer',
  password_protected: 'password-protected',
  failed: 'failed',
};

export function Library(props: { ingest: Ingest; onOpen: (t: ViewTarget) => void }) {
  const { ingest } = props;
  const [docs, setDocs] = useState<DocEntry[] | null>(null);
  const [folders, setFolders] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [typed, setTyped] = useState('');
  const [filter, setFilter] = useState('');
  const [summary, setSummary] = useState<SummarySubject | null>(null);

  async function reload() {
    try {
      const [d, f] = await Promise.all([ipc.listDocuments(), ipc.listFolders()]);
      setDocs(d);
      setFolders(f);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    void reload();
  }, [ingest.state.version]);

  // A watched folder changed and was read again: show the new state.
  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let gone = false;
    void ipc.onLibraryChanged(() => void reload()).then((u) => {
      if (gone) u();
      else unlisten = u;
    });
    return () => {
      gone = true;
      unlisten?.();
    };
  }, []);

  async function pick(kind: 'folders' | 'files') {
    setError(null);
    try {
      const paths = kind === 'folders' ? await ipc.pickFolders() : await ipc.pickFiles();
      ingest.ingest(paths);
    } catch (e) {
      setError(e);
    }
  }

  async function remove(doc: DocEntry) {
    setError(null);
    try {
      await ipc.removeDocument(doc.id);
    } catch (e) {
      setError(e);
    }
    void reload();
  }

  const shown = (docs ?? []).filter(
    (d) => !filter || d.title.toLowerCase().includes(filter.toLowerCase()) || d.path.toLowerCase().includes(filter.toLowerCase()),
  );

  return (
    <section id="library" class="library page" aria-label="Library">
      <header class="page-bar">
        <h1>Library</h1>
        <div class="actions">
          <button type="button" id="add-folder" onClick={() => void pick('folders')}>
            Add folder…
          </button>
          <button type="button" id="add-files" onClick={() => void pick('files')}>
            Add files…
          </button>
        </div>
      </header>
      <form
        class="add-path"
        onSubmit={(e) => {
          e.preventDefault();
          ingest.ingest([typed]);
          setTyped('');
        }}
      >
        <label for="add-path">Add a file or folder by its path</label>
        <div class="row">
          <input
            id="add-path"
            type="text"
            spellcheck={false}
            placeholder="/home/me/Documents/papers"
            value={typed}
            onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)}
          />
          <button id="add-path-button" type="submit" disabled={!typed.trim()}>
            Add
          </button>
        </div>
        <p class="muted small">You can also drop files and folders anywhere on the window.</p>
      </form>
      <IngestProgress ingest={ingest} />
      <ErrorNote error={error} onDismiss={() => setError(null)} />
      {summary && <SummaryPanel subject={summary} onClose={() => setSummary(null)} onOpen={props.onOpen} />}
      {folders.length > 0 && (
        <div class="folders">
          <h2>Watched folders</h2>
          <ul id="folders">
            {folders.map((f) => (
              <li key={f} class="folder">
                <code>{f}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      <div class="doc-list-head">
        <h2>
          Documents {docs && <span class="muted">({docs.length})</span>}
        </h2>
        {docs && docs.length > 5 && (
          <input
            type="search"
            class="filter"
            aria-label="Filter documents"
            placeholder="Filter…"
            value={filter}
            onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
          />
        )}
      </div>
      {docs === null ? (
        <p class="muted">Loading…</p>
      ) : docs.length === 0 ? (
        <p class="muted empty">No documents yet. Add a folder of PDFs, Markdown or text files.</p>
      ) : (
        <ul class="docs">
          {shown.map((d) => (
            <li key={d.id} class="doc" data-status={d.status} data-id={d.id} data-kind={d.kind}>
              <div class="doc-main">
                <button
                  type="button"
                  class="link doc-title"
                  title={d.path}
                  onClick={() => props.onOpen({ docId: d.id, page: 1, title: d.title })}
                >
                  {d.title || basename(d.path)}
                </button>
                <span class={`badge status-${d.status}`}>{STATUS_LABEL[d.status] ?? d.status}</span>
                {!d.embedded && d.status === 'indexed' && <span class="badge muted">keywords only</span>}
              </div>
              <div class="doc-meta muted small">
                <span>{d.kind.toUpperCase()}</span> · <span>{d.pages} pages</span> · <span>{d.chunks} passages</span> ·{' '}
                <span class="doc-path">{d.path}</span>
              </div>
              {d.reason && <p class="doc-reason warning small">{d.reason}</p>}
              {d.warning && <p class="doc-warning muted small">{d.warning}</p>}
              <div class="doc-actions">
                <button
                  type="button"
                  class="small"
                  disabled={d.status !== 'indexed'}
                  onClick={() => setSummary({ target: { doc_id: d.id }, docId: d.id, title: d.title })}
                >
                  Summarize
                </button>
                <button type="button" class="small" aria-label={`Re-index ${d.title}`} onClick={() => ingest.reindex(d.id)}>
                  Re-index
                </button>
                <ConfirmButton
                  class="small"
                  label="Remove"
                  ariaLabel={`Remove ${d.title} from the library`}
                  question="Remove from the library? (The file itself stays.)"
                  confirmLabel="Remove"
                  onConfirm={() => void remove(d)}
                />
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function IngestProgress({ ingest }: { ingest: Ingest }) {
  const s = ingest.state;
  const [, tick] = useState(0);
  useEffect(() => {
    if (!s.running) return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [s.running]);
  if (!s.running && !s.report && !s.error && s.failures.length === 0) return null;
  const frac = fractionDone(s);
  const elapsed = Date.now() - s.startedAt;
  const eta = s.running ? estimateRemaining(elapsed, frac) : null;
  return (
    <div id="ingest-progress" class="ingest-progress" role="status" aria-live="polite" data-active={s.running ? 'true' : 'false'}>
      {s.running ? (
        <>
          <div class="progress-line">
            <span>
              {s.total == null ? 'Looking for files…' : `${s.done} of ${s.total} files`}
              {s.current && <span class="muted"> · {basename(s.current)}</span>}
              {s.pagesTotal > 0 && <span class="muted"> (page {s.pagesDone} of {s.pagesTotal})</span>}
            </span>
            <span class="muted">{eta == null ? 'estimating…' : `about ${formatDuration(eta)} left`}</span>
          </div>
          <progress max={1} value={frac} aria-label="Indexing progress" />
        </>
      ) : (
        <div class="progress-line">
          {s.report ? (
            <span>
              Done: {s.report.added} added, {s.report.updated} updated, {s.report.unchanged} unchanged, {s.report.removed} removed
              {s.report.failed > 0 && `, ${s.report.failed} failed`} · {s.report.pages} pages, {s.report.chunks} passages in{' '}
              {formatDuration(s.report.seconds)}
            </span>
          ) : (
            <span>Stopped.</span>
          )}
          <button type="button" class="icon" aria-label="Dismiss" onClick={ingest.dismiss}>
            ×
          </button>
        </div>
      )}
      <ErrorNote error={s.error} />
      {s.failures.length > 0 && (
        <ul class="failures small">
          {s.failures.map((f) => (
            <li key={f.path}>
              <code>{basename(f.path)}</code>: {f.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
