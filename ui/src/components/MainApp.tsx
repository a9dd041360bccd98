import { useEffect, useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { AppStatus, Conversation, ModelInfo } from '../ipc';
import { Chat } from './Chat';
import { Library } from './Library';
import { Notes } from './Notes';
import { Settings } from './Settings';
import { Viewer } from './Viewer';
import { Conversations } from './Conversations';
import { ErrorNote } from './common';
import { useIngest } from './useIngest';
import type { View, ViewTarget } from './types';

const NAV: { view: View; label: string; key: string }[] = [
  { view: 'chat', label: 'Chat', key: '1' },
  { view: 'library', label: 'Library', key: '2' },
  { view: 'notes', label: 'Notes', key: '3' },
  { view: 'settings', label: 'Settings', key: '4' },
];

/** The main window once Quire is unlocked. */
export function MainApp({ status, onStatus }: { status: AppStatus; onStatus: (s: AppStatus) => void }) {
  const [view, setView] = useState<View>('chat');
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [conversationId, setConversationId] = useState<number | null>(null);
  const [viewer, setViewer] = useState<ViewTarget | null>(null);
  const [listError, setListError] = useState<unknown>(null);
  const [dragging, setDragging] = useState(false);
  const ingest = useIngest();
  const ingestRef = useRef(ingest);
  ingestRef.current = ingest;

  async function reloadConversations() {
    try {
      setConversations(await ipc.listConversations());
      setListError(null);
    } catch (e) {
      setListError(e);
    }
  }

  useEffect(() => {
    void reloadConversations();
  }, []);

  // Files and folders dropped anywhere on the window go to the library.
  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let gone = false;
    void ipc
      .onDragDrop((e) => {
        if (e.type === 'enter' || e.type === 'over') setDragging(true);
        else if (e.type === 'leave') setDragging(false);
        else if (e.type === 'drop') {
          setDragging(false);
          if (e.paths.length > 0) {
            setView('library');
            ingestRef.current.ingest(e.paths);
          }
        }
      })
      .then((u) => (gone ? u() : (unlisten = u)));
    return () => {
      gone = true;
      unlisten?.();
    };
  }, []);

  // Keyboard: Ctrl/Cmd+K searches conversations; Alt+1..4 switch views.
  useEffect(() => {
    function onKey(e: KeyboardEvent) {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        const input = document.getElementById('conversation-search') as HTMLInputElement | null;
        input?.focus();
        input?.select();
      } else if (e.altKey && !e.ctrlKey && !e.metaKey) {
        const nav = NAV.find((n) => n.key === e.key);
        if (nav) {
          e.preventDefault();
          setView(nav.view);
        }
      }
    }
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  function onModel(model: ModelInfo) {
    onStatus({ ...status, model, model_error: null });
  }

  function openConversation(id: number | null) {
    setConversationId(id);
    setView('chat');
  }

  return (
    <div id="app-ready" class={`app${viewer ? ' with-viewer' : ''}`}>
      <nav class="sidebar" aria-label="Quire">
        <div class="brand">Quire</div>
        <ul class="nav" role="list">
          {NAV.map((n) => (
            <li key={n.view}>
              <button
                type="button"
                id={`nav-${n.view}`}
                class={`nav-item${view === n.view ? ' active' : ''}`}
                aria-current={view === n.view ? 'page' : undefined}
                title={`${n.label} (Alt+${n.key})`}
                onClick={() => setView(n.view)}
              >
                {n.label}
              </button>
            </li>
          ))}
        </ul>
        <div class="sidebar-section">
          <div class="sidebar-head">
            <h2>Conversations</h2>
            <button type="button" id="new-chat" class="icon" aria-label="New conversation" title="New conversation" onClick={() => openConversation(null)}>
              +
            </button>
          </div>
          <ErrorNote error={listError} />
          <Conversations
            conversations={conversations}
            activeId={conversationId}
            onOpen={openConversation}
            onChanged={() => void reloadConversations()}
          />
        </div>
      </nav>
      <main class="content">
        {/* Chat stays mounted so that an answer keeps streaming while another view is shown. */}
        <div class="view" hidden={view !== 'chat'}>
          <Chat
            status={status}
            conversationId={conversationId}
            onConversation={setConversationId}
            onConversationsChanged={() => void reloadConversations()}
            onOpen={setViewer}
            onModelImported={onModel}
          />
        </div>
        {view === 'library' && <Library ingest={ingest} onOpen={setViewer} />}
        {view === 'notes' && <Notes onOpen={setViewer} />}
        {view === 'settings' && <Settings status={status} onModel={onModel} />}
        {view !== 'library' && ingest.state.running && (
          <button type="button" class="ingest-mini" onClick={() => setView('library')}>
            Indexing… {ingest.state.total != null ? `${ingest.state.done} of ${ingest.state.total} files` : ''}
          </button>
        )}
      </main>
      {viewer && (
        <aside class="viewer-panel" aria-label="Document viewer">
          <Viewer target={viewer} onClose={() => setViewer(null)} />
        </aside>
      )}
      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          Drop files or folders to add them to your library
        </div>
      )}
    </div>
  );
}
