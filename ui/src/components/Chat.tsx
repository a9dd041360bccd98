import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { Answer, AppStatus, Source, StoredCitation } from '../ipc';
import { AnswerBody } from './AnswerBody';
import { ErrorNote, SafeHtml } from './common';
import { renderMarkdown } from '../markdown';
import type { ViewTarget } from './types';

interface UserTurn {
  key: string;
  role: 'user';
  text: string;
}

interface AssistantTurn {
  key: string;
  role: 'assistant';
  /** Streamed text while streaming; the final checked answer once done. */
  text: string;
  streaming: boolean;
  complete: boolean;
  /** A live answer: the sources (from the `sources` event) and the final Answer. */
  sources?: Source[];
  refusedEarly?: boolean;
  answer?: Answer;
  /** A stored message: "[n]" refers to citations[n-1]. */
  stored?: StoredCitation[];
  /** A stored message's unsupported sentences. */
  storedUnsupported?: string[];
  error?: unknown;
}

type Turn = UserTurn | AssistantTurn;

/** One item of the sources panel. */
interface PanelSource {
  n: number;
  doc_id: string;
  title: string;
  path: string;
  page: number;
  span: [number, number];
  text: string | null;
}

let turnSeq = 0;
const nextKey = () => `t${++turnSeq}`;

function panelSources(turn: AssistantTurn | undefined): PanelSource[] {
  if (!turn) return [];
  const live = turn.answer?.sources ?? turn.sources;
  if (live) return live.map((s) => ({ ...s, text: s.text }));
  if (turn.stored) return turn.stored.map((c, i) => ({ n: i + 1, ...c, text: null }));
  return [];
}

export function Chat(props: {
  status: AppStatus;
  conversationId: number | null;
  onConversation: (id: number) => void;
  onConversationsChanged: () => void;
  onOpen: (target: ViewTarget) => void;
  onModelImported: (model: ipc.ModelInfo) => void;
}) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [question, setQuestion] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [focusKey, setFocusKey] = useState<string | null>(null);
  /** The conversation this view already shows (set by ask, so its answer is not reloaded). */
  const shownConversation = useRef<number | null>(null);
  const listRef = useRef<HTMLDivElement>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const stickToBottom = useRef(true);

  // Load the messages of a conversation picked in the sidebar.
  useEffect(() => {
    const id = props.conversationId;
    if (id === shownConversation.current) return;
    shownConversation.current = id;
    setLoadError(null);
    setFocusKey(null);
    if (id == null) {
      setTurns([]);
      return;
    }
    let cancelled = false;
    ipc
      .getMessages(id)
      .then((messages) => {
        if (cancelled) return;
        setTurns(
          messages
            .filter((m) => m.role !== 'system')
            .map((m): Turn =>
              m.role === 'user'
                ? { key: `m${m.id}`, role: 'user', text: m.text }
                : {
                    key: `m${m.id}`,
                    role: 'assistant',
                    text: m.text,
                    streaming: false,
                    complete: m.complete,
                    stored: m.citations,
                    storedUnsupported: m.checks?.unsupported_sentences,
                  },
            ),
        );
      })
      .catch((e) => !cancelled && setLoadError(e));
    return () => {
      cancelled = true;
    };
  }, [props.conversationId]);

  // Keep the newest text in view while streaming, unless the person scrolled up.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [turns]);

  function updateAssistant(key: string, f: (t: AssistantTurn) => AssistantTurn) {
    setTurns((ts) => ts.map((t) => (t.key === key && t.role === 'assistant' ? f(t) : t)));
  }

  function finish(key: string, answer: Answer) {
    updateAssistant(key, (t) => ({ ...t, text: answer.answer, answer, sources: answer.sources, streaming: false, complete: true }));
  }

  async function send() {
    const q = question.trim();
    if (!q || streaming || !props.status.model) return;
    const userKey = nextKey();
    const key = nextKey();
    setTurns((ts) => [
      ...ts,
      { key: userKey, role: 'user', text: q },
      { key, role: 'assistant', text: '', streaming: true, complete: false },
    ]);
    setFocusKey(key);
    setQuestion('');
    setStreaming(true);
    stickToBottom.current = true;
    try {
      const result = await ipc.ask(q, props.conversationId, (event) => {
        if (event.type === 'sources') {
          updateAssistant(key, (t) => ({ ...t, sources: event.sources, refusedEarly: event.refused }));
        } else if (event.type === 'token') {
          updateAssistant(key, (t) => (t.streaming ? { ...t, text: t.text + event.text } : t));
        } else if (event.type === 'done') {
          finish(key, event.answer);
        }
      });
      finish(key, result.answer);
      if (result.conversation_id !== props.conversationId) {
        shownConversation.current = result.conversation_id;
        props.onConversation(result.conversation_id);
      }
      props.onConversationsChanged();
    } catch (error) {
      updateAssistant(key, (t) => ({ ...t, streaming: false, complete: false, error }));
    } finally {
      setStreaming(false);
      inputRef.current?.focus();
    }
  }

  async function stopAnswer() {
    try {
      await ipc.stop();
    } catch {
      // Nothing running any more: the answer has finished on its own.
    }
  }

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault();
      void stopAnswer();
    }
  }

  const lastAssistant = [...turns].reverse().find((t): t is AssistantTurn => t.role === 'assistant');
  const focused = (turns.find((t) => t.key === focusKey && t.role === 'assistant') as AssistantTurn | undefined) ?? lastAssistant;
  const sources = panelSources(focused);
  const refused = focused?.answer?.refused ?? focused?.refusedEarly ?? false;

  function openSource(s: PanelSource) {
    props.onOpen({ docId: s.doc_id, page: s.page, span: s.span, quote: s.text, title: s.title });
  }

  function cite(turn: AssistantTurn, n: number) {
    setFocusKey(turn.key);
    const c = turn.answer?.citations.find((c) => c.n === n);
    if (c) return props.onOpen({ docId: c.doc_id, page: c.page, span: c.span, quote: c.quote, title: c.title });
    const s = (turn.answer?.sources ?? turn.sources)?.find((s) => s.n === n);
    if (s) return props.onOpen({ docId: s.doc_id, page: s.page, span: s.span, quote: s.text, title: s.title });
    const st = turn.stored?.[n - 1];
    if (st) props.onOpen({ docId: st.doc_id, page: st.page, span: st.span, title: st.title });
  }

  function citationNumbers(turn: AssistantTurn): number[] {
    if (turn.answer) return turn.answer.citations.map((c) => c.n);
    if (turn.stored) return turn.stored.map((_, i) => i + 1);
    return [];
  }

  function citationPage(turn: AssistantTurn, n: number): number | undefined {
    return (turn.answer?.citations.find((c) => c.n === n) ?? turn.stored?.[n - 1])?.page;
  }

  function citationLabel(turn: AssistantTurn, n: number): string {
    const c = turn.answer?.citations.find((c) => c.n === n) ?? turn.stored?.[n - 1];
    return c ? `Source ${n}: ${c.title}, page ${c.page}` : `Source ${n}`;
  }

  const noModel = !props.status.model;

  return (
    <section class="chat" id="chat" aria-label="Chat">
      <div class="chat-main">
        <div
          class="messages"
          ref={listRef}
          role="log"
          aria-live="polite"
          onScroll={(e) => {
            const el = e.currentTarget as HTMLDivElement;
            stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          {noModel && <FirstRun status={props.status} onImported={props.onModelImported} />}
          {!noModel && turns.length === 0 && !loadError && (
            <div class="empty">
              <h2>Ask your documents</h2>
              <p class="muted">Answers come only from your library and notes, with the passages they rest on.</p>
            </div>
          )}
          <ErrorNote error={loadError} />
          {turns.map((t) =>
            t.role === 'user' ? (
              <div key={t.key} class="message user">
                <div class="bubble">{t.text}</div>
              </div>
            ) : (
              <AssistantMessage
                key={t.key}
                turn={t}
                focused={focused?.key === t.key}
                citations={citationNumbers(t)}
                label={(n) => citationLabel(t, n)}
                page={(n) => citationPage(t, n)}
                onCite={(n) => cite(t, n)}
                onOpenSource={openSource}
              />
            ),
          )}
        </div>
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <label class="visually-hidden" for="question">
            Your question
          </label>
          <textarea
            id="question"
            ref={inputRef}
            rows={3}
            placeholder={noModel ? 'Import a language model first' : 'Ask about your documents…  (Enter sends, Shift+Enter for a new line)'}
            value={question}
            disabled={noModel}
            onInput={(e) => setQuestion((e.currentTarget as HTMLTextAreaElement).value)}
            onKeyDown={onKeyDown}
          />
          {streaming ? (
            <button id="stop" type="button" class="send danger" onClick={() => void stopAnswer()} aria-label="Stop the answer (Esc)">
              Stop
            </button>
          ) : (
            <button id="send" type="submit" class="send primary" disabled={noModel || !question.trim()} aria-label="Send (Enter)">
              Send
            </button>
          )}
        </form>
      </div>
      <aside id="sources" class={`sources${refused ? ' refused' : ''}`} aria-label={refused ? 'Closest passages' : 'Sources'}>
        <h2>{refused ? 'Closest passages' : 'Sources'}</h2>
        {sources.length === 0 ? (
          <p class="muted small">{focused?.streaming ? 'Finding passages…' : 'The passages an answer rests on appear here.'}</p>
        ) : (
          <ol class="source-list">
            {sources.map((s) => (
              <li key={`${s.n}-${s.doc_id}-${s.page}`}>
                <button type="button" class="source" data-n={s.n} data-doc={s.doc_id} data-page={s.page} onClick={() => openSource(s)}>
                  <span class="source-head">
                    <span class="source-n">{s.n}</span>
                    <span class="source-title">{s.title}</span>
                    <span class="source-page">p. {s.page}</span>
                  </span>
                  {s.text && <span class="source-text">{s.text}</span>}
                </button>
              </li>
            ))}
          </ol>
        )}
      </aside>
    </section>
  );
}

function AssistantMessage(props: {
  turn: AssistantTurn;
  focused: boolean;
  citations: number[];
  label: (n: number) => string;
  page: (n: number) => number | undefined;
  onCite: (n: number) => void;
  onOpenSource: (s: PanelSource) => void;
}) {
  const { turn } = props;
  const answer = turn.answer;
  const refused = answer?.refused ?? false;
  return (
    <div class={`message assistant${props.focused ? ' focused' : ''}`}>
      <div
        class={`bubble answer${turn.streaming ? ' streaming' : ''}${refused ? ' refused' : ''}`}
        data-complete={turn.complete ? 'true' : 'false'}
        aria-busy={turn.streaming}
      >
        {turn.streaming ? (
          <div class="answer-stream">
            {turn.text || <span class="muted">{turn.sources ? 'Writing…' : 'Searching your documents…'}</span>}
            <span class="caret" aria-hidden="true" />
          </div>
        ) : refused && answer ? (
          <div class="refusal" role="note">
            <h3>Not found in your documents</h3>
            {answer.answer && <SafeHtml class="markdown" html={renderMarkdown(answer.answer)} />}
            {answer.sources.length > 0 && (
              <>
                <p class="muted small">The closest passages:</p>
                <ol class="closest">
                  {answer.sources.map((s) => (
                    <li key={`${s.n}-${s.doc_id}`}>
                      <button type="button" class="link" onClick={() => props.onOpenSource({ ...s })}>
                        {s.title}, p. {s.page}
                      </button>
                      <span class="muted small"> {s.text.length > 160 ? `${s.text.slice(0, 160)}…` : s.text}</span>
                    </li>
                  ))}
                </ol>
              </>
            )}
          </div>
        ) : (
          <AnswerBody
            text={turn.text}
            citations={props.citations}
            unsupported={answer?.unsupported_sentences ?? turn.storedUnsupported}
            label={props.label}
            page={props.page}
            onCite={props.onCite}
          />
        )}
        {answer?.draft && (
          <details class="draft">
            <summary>Show the model's unchecked draft</summary>
            <SafeHtml class="markdown" html={renderMarkdown(answer.draft)} />
          </details>
        )}
        {answer?.stop === 'cancelled' && <p class="muted small stop-reason">Stopped before the end.</p>}
        {answer?.stop === 'max_tokens' && (
          <p class="muted small stop-reason">Cut off at the answer length limit (Settings → answer length).</p>
        )}
        {answer && (
          <p class="muted small timings">
            {answer.timings.completion_tokens} tokens · {(answer.timings.total_ms / 1000).toFixed(1)} s
            {answer.unsupported_sentences.length > 0 && ` · ${answer.unsupported_sentences.length} unsupported sentence(s) marked`}
          </p>
        )}
        {turn.error != null && <ErrorNote error={turn.error} />}
        {!turn.streaming && !turn.complete && turn.error == null && <p class="muted small">This answer was not finished.</p>}
      </div>
    </div>
  );
}

function FirstRun({ status, onImported }: { status: AppStatus; onImported: (m: ipc.ModelInfo) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function importModel() {
    setError(null);
    try {
      const path = await ipc.pickModelFile();
      if (!path) return;
      setBusy(true);
      onImported(await ipc.importModel(path));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="first-run" id="no-model">
      <h2>No language model yet</h2>
      {status.model_error && <p class="muted">{status.model_error.message}</p>}
      <p>Quire answers with a local language model in GGUF format. Nothing is downloaded by the app.</p>
      <button type="button" class="primary" id="import-model-first" disabled={busy} onClick={() => void importModel()}>
        {busy ? 'Importing…' : 'Import a GGUF file…'}
      </button>
      <p class="muted">or run scripts/fetch-models.sh in Quire's folder</p>
      <ErrorNote error={error} />
    </div>
  );
}
