import { useEffect, useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { MeetingItem, PieceSummary, Summary, SummaryTarget } from '../ipc';
import { renderMarkdown } from '../markdown';
import { ErrorNote, SafeHtml } from './common';
import type { ViewTarget } from './types';

export interface SummarySubject {
  target: SummaryTarget;
  /** The document id to open passages in (a note's is "note-<id>"). */
  docId: string;
  title: string;
}

/** Runs `summarize` for a document or note and shows its structured result. */
export function SummaryPanel(props: { subject: SummarySubject; onClose: () => void; onOpen: (t: ViewTarget) => void }) {
  const { subject } = props;
  const [running, setRunning] = useState(true);
  const [total, setTotal] = useState<number | null>(null);
  const [current, setCurrent] = useState<number | null>(null);
  const [streams, setStreams] = useState<Record<number, string>>({});
  const [pieces, setPieces] = useState<PieceSummary[]>([]);
  const [result, setResult] = useState<Summary | null>(null);
  const [error, setError] = useState<unknown>(null);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    setRunning(true);
    setTotal(null);
    setCurrent(null);
    setStreams({});
    setPieces([]);
    setResult(null);
    setError(null);
    ipc
      .summarize(subject.target, (e) => {
        if (!alive.current) return;
        if (e.type === 'piece_started') {
          setTotal(e.total);
          setCurrent(e.index);
        } else if (e.type === 'token') {
          setStreams((s) => ({ ...s, [e.index]: (s[e.index] ?? '') + e.text }));
        } else if (e.type === 'piece_done') {
          setTotal(e.total);
          setPieces((ps) => [...ps.filter((p) => p.index !== e.piece.index), e.piece].sort((a, b) => a.index - b.index));
        }
      })
      .then((s) => alive.current && setResult(s))
      .catch((e) => alive.current && setError(e))
      .finally(() => alive.current && setRunning(false));
    return () => {
      alive.current = false;
    };
  }, [JSON.stringify(subject.target)]);

  const shownPieces = result ? [...result.pieces].sort((a, b) => a.index - b.index) : pieces;
  // "part i of n": pieces are numbered from 0 or 1 depending on the engine; count done ones.
  const partNumber = Math.min(pieces.length + (running ? 1 : 0), total ?? 0);
  const open = (item: { page: number; span?: [number, number] }) =>
    props.onOpen({ docId: subject.docId, page: item.page, span: item.span ?? null, title: subject.title });

  return (
    <section class="summary" id="summary" aria-label={`Summary of ${subject.title}`} aria-busy={running}>
      <header class="summary-bar">
        <h2>Summary: {result?.title || subject.title}</h2>
        {running ? (
          <button type="button" id="summary-stop" class="danger" onClick={() => void ipc.stop().catch(() => {})}>
            Stop
          </button>
        ) : (
          <button type="button" class="icon" id="summary-close" aria-label="Close the summary" onClick={props.onClose}>
            ×
          </button>
        )}
      </header>
      {running && (
        <p id="summary-progress" role="status" aria-live="polite">
          {total ? `Summarizing part ${Math.max(partNumber, 1)} of ${total}…` : 'Reading the document…'}
        </p>
      )}
      {running && total ? <progress max={total} value={pieces.length} aria-label="Summary progress" /> : null}
      <ErrorNote error={error} />
      {result?.cancelled && <p class="warning">Stopped before the end: the summary covers only the parts done.</p>}
      {result?.summary && <SafeHtml class="markdown summary-overall" html={renderMarkdown(result.summary)} />}
      {result?.meeting && (
        <div class="meeting">
          <MeetingList title="Decisions" id="decisions" items={result.meeting.decisions} onOpen={open} />
          <MeetingList title="Action items" id="action-items" items={result.meeting.action_items} onOpen={open} actions />
          <MeetingList title="Open questions" id="open-questions" items={result.meeting.open_questions} onOpen={open} />
        </div>
      )}
      {(shownPieces.length > 0 || (running && current != null)) && (
        <>
          <h3>Part by part</h3>
          <ol class="pieces">
            {shownPieces.map((p) => (
              <li key={p.index} class="piece">
                <button type="button" class="link piece-where" onClick={() => open({ page: p.first_page })}>
                  {p.first_page === p.last_page ? `Page ${p.first_page}` : `Pages ${p.first_page}–${p.last_page}`}
                  {p.section ? ` · ${p.section}` : ''}
                </button>
                <SafeHtml class="markdown" html={renderMarkdown(p.summary)} />
              </li>
            ))}
            {running && current != null && !pieces.some((p) => p.index === current) && (
              <li class="piece streaming" key={`s${current}`}>
                <span class="muted small">Writing…</span>
                <div class="answer-stream">{streams[current] ?? ''}</div>
              </li>
            )}
          </ol>
        </>
      )}
      {result && <p class="muted small">Took {(result.total_ms / 1000).toFixed(1)} s</p>}
    </section>
  );
}

function MeetingList(props: {
  title: string;
  id: string;
  items: MeetingItem[];
  actions?: boolean;
  onOpen: (item: MeetingItem) => void;
}) {
  return (
    <div class="meeting-group" id={props.id}>
      <h3>{props.title}</h3>
      {props.items.length === 0 ? (
        <p class="muted small">None.</p>
      ) : (
        <ul>
          {props.items.map((item, i) => (
            <li key={i} class="meeting-item">
              <span class="item-text">{item.text}</span>
              {props.actions && (
                <span class="item-meta">
                  {' '}
                  — owner: {item.owner ?? 'unassigned'}
                  {item.due ? `, due ${item.due}` : ''}
                </span>
              )}
              <button type="button" class="link item-section" onClick={() => props.onOpen(item)}>
                {item.section} · p. {item.page}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
