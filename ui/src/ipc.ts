// The ONE module through which the UI talks to Rust. Components import the typed functions
// below; nothing else imports @tauri-apps/api/core, the dialog plugin or the webview API.
import { Channel, invoke } from '@tauri-apps/api/core';
import { open as openDialog, save as saveDialog } from '@tauri-apps/plugin-dialog';
import { ERROR_HINTS, isErrorCode, type ErrorCode } from './errors';

export type { ErrorCode } from './errors';

// ---------------------------------------------------------------------------------------
// Errors

/** The shape every command rejects with. */
export interface IpcErrorPayload {
  code: ErrorCode;
  message: string;
}

/** A rejected command, with the code, the Rust message, and a hint for the person. */
export class IpcError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'IpcError';
    this.code = code;
    this.hint = ERROR_HINTS[code];
  }
  toPayload(): IpcErrorPayload {
    return { code: this.code, message: this.message };
  }
}

/** Turns whatever a rejected invoke gives (the `{code, message}` object, a plain string from
 * Tauri itself, an Error) into an IpcError. Unknown codes become `internal`. */
export function toIpcError(err: unknown): IpcError {
  if (err instanceof IpcError) return err;
  if (err && typeof err === 'object' && 'code' in err) {
    const { code, message } = err as { code: unknown; message?: unknown };
    const msg = typeof message === 'string' ? message : String(message ?? code);
    return new IpcError(isErrorCode(code) ? code : 'internal', msg);
  }
  if (err instanceof Error) {
    // Keep where it happened: shown under "Details" for a bug report.
    const e = new IpcError('internal', err.message);
    e.stack = err.stack;
    return e;
  }
  if (typeof err === 'string') return new IpcError('internal', err);
  return new IpcError('internal', String(err));
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (err) {
    throw toIpcError(err);
  }
}

/** Calls a streaming command: its events arrive on a Channel passed as `onEvent`. */
async function stream<E, T>(
  cmd: string,
  args: Record<string, unknown>,
  onEvent: (event: E) => void,
): Promise<T> {
  const channel = new Channel<E>();
  channel.onmessage = onEvent;
  return call<T>(cmd, { ...args, onEvent: channel });
}

// ---------------------------------------------------------------------------------------
// Start-up

export type StartAction = 'retry' | 'use_passphrase' | 'start_afresh';
export type AppState = 'ready' | 'needs_passphrase' | 'setup_passphrase' | 'error';
export type KeyMode = 'keychain' | 'passphrase';

export interface ModelInfo {
  path: string;
  name: string | null;
  architecture: string;
  parameters: number | null;
  quantization: string | null;
  context_length: number | null;
  file_size: number;
}

export interface AppStatus {
  state: AppState;
  error: IpcErrorPayload | null;
  actions: StartAction[];
  key_mode: KeyMode;
  data_dir: string;
  model: ModelInfo | null;
  model_error: IpcErrorPayload | null;
  version: string;
}

export const appStatus = () => call<AppStatus>('app_status');
export const unlock = (passphrase: string) => call<AppStatus>('unlock', { passphrase });
export const usePassphrase = () => call<AppStatus>('use_passphrase');
export const startAfresh = () => call<{ moved_to: string; status: AppStatus }>('start_afresh');
export const retry = () => call<AppStatus>('retry');

// ---------------------------------------------------------------------------------------
// Models

export const listModels = () => call<ModelInfo[]>('list_models');
export const selectModel = (path: string) => call<ModelInfo>('select_model', { path });
export const importModel = (path: string) => call<ModelInfo>('import_model', { path });

// ---------------------------------------------------------------------------------------
// Library

export type DocStatus = 'indexed' | 'no_text_layer' | 'password_protected' | 'failed';
export type DocKind = 'pdf' | 'note' | 'text';

export interface DocEntry {
  id: string;
  path: string;
  title: string;
  content_hash: string;
  pages: number;
  chunks: number;
  status: DocStatus;
  reason?: string;
  warning: string | null;
  embedded: boolean;
  /** The reader version that read the file (an older one's text is read again). */
  reader?: number;
  kind: DocKind;
}

export type IngestEvent =
  | { event: 'planned'; files: number }
  | { event: 'started'; path: string }
  | { event: 'progress'; path: string; pages_done: number; pages_total: number }
  | { event: 'finished'; path: string; chunks: number; warning: string | null }
  | { event: 'unchanged'; path: string }
  | { event: 'failed'; path: string; status: { status: DocStatus; reason?: string }; reason: string }
  | { event: 'removed'; path: string };

export interface IngestReport {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  failed: number;
  pages: number;
  chunks: number;
  seconds: number;
}

export interface DocumentText {
  id: string;
  title: string;
  path: string;
  kind: DocKind;
  pages: { number: number; text: string }[];
}

export const listDocuments = () => call<DocEntry[]>('list_documents');
export const ingest = (paths: string[], onEvent: (e: IngestEvent) => void) =>
  stream<IngestEvent, IngestReport>('ingest', { paths }, onEvent);
export const listFolders = () => call<string[]>('list_folders');
export const removeDocument = (id: string) => call<boolean>('remove_document', { id });
export const reindexDocument = (id: string, onEvent: (e: IngestEvent) => void) =>
  stream<IngestEvent, IngestReport>('reindex_document', { id }, onEvent);
export const readDocument = (id: string) => call<DocumentText>('read_document', { id });

/** The PDF's bytes. Tauri hands raw responses over as an ArrayBuffer; be lenient about a
 * plain number array too (a command that returns `Vec<u8>` as JSON). */
export async function documentBytes(id: string): Promise<Uint8Array> {
  const raw = await call<ArrayBuffer | ArrayBufferView | number[]>('document_bytes', { id });
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw);
  if (ArrayBuffer.isView(raw)) return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  if (Array.isArray(raw)) return Uint8Array.from(raw);
  throw new IpcError('internal', 'document_bytes returned no bytes');
}

// ---------------------------------------------------------------------------------------
// Chat

export interface Source {
  n: number;
  doc_id: string;
  path: string;
  title: string;
  page: number;
  span: [number, number];
  text: string;
  score: number;
}

export interface AnswerCitation {
  n: number;
  doc_id: string;
  path: string;
  title: string;
  page: number;
  span: [number, number];
  quote: string;
  inferred: boolean;
}

export interface Timings {
  retrieval_ms: number;
  ttft_ms: number;
  total_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface Answer {
  answer: string;
  citations: AnswerCitation[];
  unsupported_sentences: string[];
  refused: boolean;
  invalid_citations: number;
  sources: Source[];
  query: string;
  draft: string | null;
  stop: 'end_of_turn' | 'max_tokens' | 'cancelled' | 'sink_stopped' | null;
  timings: Timings;
}

export type AnswerEvent =
  | { type: 'sources'; sources: Source[]; refused: boolean }
  | { type: 'token'; text: string }
  | { type: 'done'; answer: Answer };

export interface AskResult {
  conversation_id: number;
  answer: Answer;
}

export interface Conversation {
  id: number;
  title: string;
  model: string;
  created_at: number;
  updated_at: number;
}

export interface StoredCitation {
  doc_id: string;
  path: string;
  title: string;
  page: number;
  span: [number, number];
}

export interface Message {
  id: number;
  conversation_id: number;
  role: 'user' | 'assistant' | 'system';
  text: string;
  citations: StoredCitation[];
  created_at: number;
  complete: boolean;
  /** For a checked answer: the sentences its sources do not support, and whether it is
   * the refusal. */
  checks: { unsupported_sentences: string[]; refused: boolean } | null;
}

export interface SearchHit {
  conversation: Conversation;
  message_id: number;
  role: string;
  snippet: string;
}

export const ask = (question: string, conversationId: number | null, onEvent: (e: AnswerEvent) => void) =>
  stream<AnswerEvent, AskResult>('ask', { question, conversationId }, onEvent);
export const stop = () => call<void>('stop');
export const listConversations = () => call<Conversation[]>('list_conversations');
export const getMessages = (conversationId: number) => call<Message[]>('get_messages', { conversationId });
export const renameConversation = (conversationId: number, title: string) =>
  call<void>('rename_conversation', { conversationId, title });
export const deleteConversation = (conversationId: number) => call<void>('delete_conversation', { conversationId });
export const searchConversations = (query: string) => call<SearchHit[]>('search_conversations', { query });
export const exportConversation = (conversationId: number, path: string) =>
  call<void>('export_conversation', { conversationId, path });

// ---------------------------------------------------------------------------------------
// Notes

export interface Note {
  id: number;
  title: string;
  body: string;
  tags: string[];
  created_at: number;
  updated_at: number;
}

export const listNotes = () => call<Note[]>('list_notes');
export const addNote = (title: string, body: string) => call<Note>('add_note', { title, body });
export const editNote = (id: number, title: string, body: string) => call<Note>('edit_note', { id, title, body });
export const deleteNote = (id: number) => call<void>('delete_note', { id });

// ---------------------------------------------------------------------------------------
// Summaries

export interface PieceSummary {
  index: number;
  first_page: number;
  last_page: number;
  section: string | null;
  summary: string;
  tokens: number;
}

export interface MeetingItem {
  text: string;
  owner: string | null;
  due: string | null;
  section: string;
  page: number;
  span: [number, number];
}

export interface Summary {
  title: string;
  summary: string;
  pieces: PieceSummary[];
  meeting: { decisions: MeetingItem[]; action_items: MeetingItem[]; open_questions: MeetingItem[] } | null;
  cancelled: boolean;
  total_ms: number;
}

export type SummaryEvent =
  | { type: 'piece_started'; index: number; total: number }
  | { type: 'token'; index: number; text: string }
  | { type: 'piece_done'; piece: PieceSummary; total: number };

export type SummaryTarget = { doc_id: string } | { note_id: number };

export const summarize = (target: SummaryTarget, onEvent: (e: SummaryEvent) => void) =>
  stream<SummaryEvent, Summary>('summarize', { target }, onEvent);

// ---------------------------------------------------------------------------------------
// Settings

export interface Settings {
  model_path: string | null;
  k: number;
  max_answer_tokens: number;
  temperature: number;
}

export const getSettings = () => call<Settings>('get_settings');
export const setSettings = (settings: Settings) => call<Settings>('set_settings', { settings });

// ---------------------------------------------------------------------------------------
// Native dialogs (dialog plugin) and window drag-and-drop. They also travel over IPC, so
// they live here too; errors become IpcError like every other call.

async function dialog<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw toIpcError(err);
  }
}

const asList = (picked: string | string[] | null): string[] =>
  picked == null ? [] : Array.isArray(picked) ? picked : [picked];

/** Folders to add (empty when cancelled). */
export const pickFolders = () =>
  dialog(async () => asList(await openDialog({ directory: true, multiple: true, title: 'Add folder' })));

/** Files to add (empty when cancelled). */
export const pickFiles = () =>
  dialog(async () =>
    asList(
      await openDialog({
        multiple: true,
        title: 'Add files',
        filters: [{ name: 'Documents', extensions: ['pdf', 'md', 'markdown', 'txt'] }],
      }),
    ),
  );

/** A GGUF model file, or null when cancelled. */
export const pickModelFile = () =>
  dialog(async () => {
    const picked = asList(
      await openDialog({ multiple: false, title: 'Import a GGUF model', filters: [{ name: 'GGUF model', extensions: ['gguf'] }] }),
    );
    return picked[0] ?? null;
  });

/** Where to save an export, or null when cancelled. */
export const pickSavePath = (defaultName: string) =>
  dialog(() => saveDialog({ defaultPath: defaultName, filters: [{ name: 'Markdown', extensions: ['md'] }] }));

export type DropEvent = { type: 'enter'; paths: string[] } | { type: 'over' } | { type: 'drop'; paths: string[] } | { type: 'leave' };

/** Listens for files and folders dropped onto the window. Outside Tauri (tests, a plain
 * browser) there is no webview to listen to: returns a no-op unlisten. */
export async function onDragDrop(handler: (event: DropEvent) => void): Promise<() => void> {
  const internals = (window as unknown as { __TAURI_INTERNALS__?: { metadata?: { currentWebview?: unknown } } })
    .__TAURI_INTERNALS__;
  if (!internals?.metadata?.currentWebview) return () => {};
  try {
    const { getCurrentWebview } = await import('@tauri-apps/api/webview');
    const unlisten = await getCurrentWebview().onDragDropEvent((e) => {
      const p = e.payload;
      if (p.type === 'enter' || p.type === 'drop') handler({ type: p.type, paths: p.paths });
      else handler({ type: p.type });
    });
    return unlisten;
  } catch {
    return () => {};
  }
}

/** Calls `handler` whenever a watched folder changed and was read again (the Rust side
 * emits `library-changed` with what was done). Outside Tauri: a no-op unlisten. */
export async function onLibraryChanged(handler: (report: IngestReport) => void): Promise<() => void> {
  const internals = (window as unknown as { __TAURI_INTERNALS__?: unknown }).__TAURI_INTERNALS__;
  if (!internals) return () => {};
  try {
    const { listen } = await import('@tauri-apps/api/event');
    return await listen<IngestReport>('library-changed', (e) => handler(e.payload));
  } catch {
    return () => {};
  }
}
