import { useEffect, useMemo, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { Note } from '../ipc';
import { renderMarkdown } from '../markdown';
import { formatDate } from '../format';
import { ConfirmButton, ErrorNote, SafeHtml } from './common';
import { SummaryPanel, type SummarySubject } from './SummaryPanel';
import type { ViewTarget } from './types';

type Editing = { id: number | null; title: string; body: string; dirty: boolean };

export function Notes(props: { onOpen: (t: ViewTarget) => void }) {
  const [notes, setNotes] = useState<Note[] | null>(null);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [summary, setSummary] = useState<SummarySubject | null>(null);

  async function reload() {
    try {
      const list = await ipc.listNotes();
      setNotes([...list].sort((a, b) => b.updated_at - a.updated_at));
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    void reload();
  }, []);

  const preview = useMemo(() => renderMarkdown(editing?.body ?? ''), [editing?.body]);

  async function save() {
    if (!editing || saving) return;
    const title = editing.title.trim() || firstLine(editing.body) || 'Untitled note';
    setSaving(true);
    setError(null);
    try {
      const saved = editing.id == null ? await ipc.addNote(title, editing.body) : await ipc.editNote(editing.id, title, editing.body);
      setEditing({ id: saved.id, title: saved.title, body: saved.body, dirty: false });
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  }

  async function remove(note: Note) {
    setError(null);
    try {
      await ipc.deleteNote(note.id);
      if (editing?.id === note.id) setEditing(null);
    } catch (e) {
      setError(e);
    }
    await reload();
  }

  return (
    <section id="notes" class="notes page" aria-label="Notes">
      <header class="page-bar">
        <h1>Notes</h1>
        <button
          type="button"
          id="note-new"
          class="primary"
          onClick={() => {
            setEditing({ id: null, title: '', body: '', dirty: false });
            setTimeout(() => document.getElementById('note-title')?.focus(), 0);
          }}
        >
          New note
        </button>
      </header>
      <ErrorNote error={error} onDismiss={() => setError(null)} />
      {summary && <SummaryPanel subject={summary} onClose={() => setSummary(null)} onOpen={props.onOpen} />}
      <div class="notes-layout">
        <ul class="note-list" aria-label="Your notes">
          {notes === null && <li class="muted">Loading…</li>}
          {notes?.length === 0 && <li class="muted">No notes yet.</li>}
          {notes?.map((n) => (
            <li key={n.id} class={`note${editing?.id === n.id ? ' active' : ''}`} data-id={n.id}>
              <button
                type="button"
                class="note-open"
                aria-current={editing?.id === n.id ? 'true' : undefined}
                onClick={() => setEditing({ id: n.id, title: n.title, body: n.body, dirty: false })}
              >
                <span class="note-title-text">{n.title || 'Untitled note'}</span>
                <span class="muted small">{formatDate(n.updated_at)}</span>
              </button>
            </li>
          ))}
        </ul>
        {editing ? (
          <form
            class="note-editor"
            onSubmit={(e) => {
              e.preventDefault();
              void save();
            }}
            onKeyDown={(e) => {
              if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') {
                e.preventDefault();
                void save();
              }
            }}
          >
            <label class="visually-hidden" for="note-title">
              Title
            </label>
            <input
              id="note-title"
              type="text"
              placeholder="Title"
              value={editing.title}
              onInput={(e) => setEditing({ ...editing, title: (e.currentTarget as HTMLInputElement).value, dirty: true })}
            />
            <div class="note-panes">
              <div class="pane">
                <label for="note-body" class="small muted">
                  Markdown
                </label>
                <textarea
                  id="note-body"
                  value={editing.body}
                  spellcheck
                  onInput={(e) => setEditing({ ...editing, body: (e.currentTarget as HTMLTextAreaElement).value, dirty: true })}
                />
              </div>
              <div class="pane">
                <span class="small muted">Preview</span>
                <SafeHtml class="markdown note-preview" html={preview} />
              </div>
            </div>
            <div class="actions">
              <button type="submit" id="note-save" class="primary" disabled={saving}>
                {saving ? 'Saving…' : editing.dirty || editing.id == null ? 'Save' : 'Saved'}
              </button>
              {editing.id != null && (
                <>
                  <button
                    type="button"
                    id="note-summarize"
                    onClick={() =>
                      setSummary({ target: { note_id: editing.id! }, docId: `note-${editing.id}`, title: editing.title || 'Note' })
                    }
                  >
                    Summarize
                  </button>
                  <ConfirmButton
                    label="Delete"
                    ariaLabel="Delete this note"
                    question="Delete this note?"
                    confirmLabel="Delete"
                    onConfirm={() => {
                      const n = notes?.find((x) => x.id === editing.id);
                      if (n) void remove(n);
                    }}
                  />
                </>
              )}
              <span class="muted small">Ctrl+S saves. Notes are stored encrypted and searched like documents.</span>
            </div>
          </form>
        ) : (
          <p class="muted empty">Pick a note, or make a new one.</p>
        )}
      </div>
    </section>
  );
}

function firstLine(body: string): string {
  return (body.split('\n').find((l) => l.trim()) ?? '').replace(/^#+\s*/, '').trim().slice(0, 80);
}
