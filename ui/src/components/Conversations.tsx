import { useEffect, useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { Conversation, SearchHit } from '../ipc';
import { boldParts } from '../markdown';
import { formatDate } from '../format';
import { ConfirmButton, ErrorNote } from './common';

/** The conversation list in the sidebar: newest first, search, rename, delete, export. */
export function Conversations(props: {
  conversations: Conversation[];
  activeId: number | null;
  onOpen: (id: number | null) => void;
  onChanged: () => void;
}) {
  const [query, setQuery] = useState('');
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [renaming, setRenaming] = useState<number | null>(null);
  const [title, setTitle] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [exported, setExported] = useState<string | null>(null);
  const searchSeq = useRef(0);

  useEffect(() => {
    const q = query.trim();
    if (!q) {
      setHits(null);
      return;
    }
    const seq = ++searchSeq.current;
    const t = setTimeout(() => {
      ipc
        .searchConversations(q)
        .then((h) => seq === searchSeq.current && setHits(h))
        .catch((e) => seq === searchSeq.current && setError(e));
    }, 200);
    return () => clearTimeout(t);
  }, [query]);

  const sorted = [...props.conversations].sort((a, b) => b.updated_at - a.updated_at);

  const renamingRef = useRef<number | null>(null);
  renamingRef.current = renaming;

  async function rename(id: number) {
    // Enter and the blur that follows both land here: act once.
    if (renamingRef.current !== id) return;
    renamingRef.current = null;
    const t = title.trim();
    setRenaming(null);
    if (!t || t === props.conversations.find((c) => c.id === id)?.title) return;
    if (!t) return;
    try {
      await ipc.renameConversation(id, t);
    } catch (e) {
      setError(e);
    }
    props.onChanged();
  }

  async function remove(id: number) {
    try {
      await ipc.deleteConversation(id);
      if (props.activeId === id) props.onOpen(null);
    } catch (e) {
      setError(e);
    }
    props.onChanged();
  }

  async function exportOne(c: Conversation) {
    setError(null);
    setExported(null);
    try {
      const path = await ipc.pickSavePath(`${safeFileName(c.title) || 'conversation'}.md`);
      if (!path) return;
      await ipc.exportConversation(c.id, path);
      setExported(path);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <div class="conversations-panel">
      <div class="search-row">
        <label class="visually-hidden" for="conversation-search">
          Search conversations
        </label>
        <input
          id="conversation-search"
          type="search"
          placeholder="Search conversations (Ctrl+K)"
          value={query}
          onInput={(e) => setQuery((e.currentTarget as HTMLInputElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              setQuery('');
              (e.currentTarget as HTMLInputElement).blur();
            }
          }}
        />
      </div>
      <ErrorNote error={error} onDismiss={() => setError(null)} />
      {exported && (
        <p class="notice small" role="status">
          Exported to <code>{exported}</code>
        </p>
      )}
      {hits ? (
        <ul id="search-results" class="conversation-list" aria-label="Search results">
          {hits.length === 0 && <li class="muted small">No matches.</li>}
          {hits.map((h) => (
            <li key={`${h.conversation.id}-${h.message_id}`} class="search-hit">
              <button type="button" class="conversation-open" onClick={() => props.onOpen(h.conversation.id)}>
                <span class="conversation-title">{h.conversation.title || 'Untitled'}</span>
                <span class="snippet small">
                  {boldParts(h.snippet).map((p, i) => (p.bold ? <b key={i}>{p.text}</b> : <span key={i}>{p.text}</span>))}
                </span>
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <ul id="conversations" class="conversation-list" aria-label="Conversations">
          {sorted.length === 0 && <li class="muted small">No conversations yet.</li>}
          {sorted.map((c) => (
            <li
              key={c.id}
              class={`conversation${c.id === props.activeId ? ' active' : ''}`}
              data-id={c.id}
              onClick={(e) => {
                // The whole row opens the conversation (its button too, by bubbling), except
                // its own action buttons and the rename field.
                const t = e.target as Element;
                if (renaming !== c.id && !t.closest('.row-actions')) props.onOpen(c.id);
              }}
            >
              {renaming === c.id ? (
                <input
                  class="rename"
                  aria-label="New title"
                  value={title}
                  ref={(el) => {
                    if (el && document.activeElement !== el) el.focus();
                  }}
                  onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter') void rename(c.id);
                    else if (e.key === 'Escape') {
                      renamingRef.current = null;
                      setRenaming(null);
                    }
                  }}
                  onBlur={() => void rename(c.id)}
                />
              ) : (
                <button
                  type="button"
                  class="conversation-open"
                  aria-current={c.id === props.activeId ? 'true' : undefined}
                  onDblClick={() => {
                    setTitle(c.title);
                    setRenaming(c.id);
                  }}
                >
                  <span class="conversation-title">{c.title || 'Untitled'}</span>
                  <span class="muted small">{formatDate(c.updated_at)}</span>
                </button>
              )}
              <span class="row-actions">
                <button
                  type="button"
                  class="icon"
                  aria-label={`Rename ${c.title}`}
                  title="Rename"
                  onClick={() => {
                    setTitle(c.title);
                    setRenaming(c.id);
                  }}
                >
                  ✎
                </button>
                <button type="button" class="icon" aria-label={`Export ${c.title} to Markdown`} title="Export to Markdown" onClick={() => void exportOne(c)}>
                  ⤓
                </button>
                <ConfirmButton
                  icon="×"
                  label="Delete"
                  ariaLabel={`Delete ${c.title}`}
                  question="Delete?"
                  confirmLabel="Delete"
                  onConfirm={() => void remove(c.id)}
                />
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function safeFileName(s: string): string {
  return s.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, ' ').trim().slice(0, 80);
}
