import { useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { IngestEvent, IngestReport } from '../ipc';

export interface IngestState {
  running: boolean;
  /** Files planned (null until the `planned` event). */
  total: number | null;
  /** Files finished, unchanged or failed. */
  done: number;
  current: string | null;
  pagesDone: number;
  pagesTotal: number;
  startedAt: number;
  /** When the last event arrived (for the ETA). */
  lastAt: number;
  failures: { path: string; reason: string }[];
  report: IngestReport | null;
  error: unknown;
  /** Bumped whenever the library changed, so lists reload. */
  version: number;
}

const idle: IngestState = {
  running: false,
  total: null,
  done: 0,
  current: null,
  pagesDone: 0,
  pagesTotal: 0,
  startedAt: 0,
  lastAt: 0,
  failures: [],
  report: null,
  error: null,
  version: 0,
};

/** Reduces one ingest event into the progress state. */
export function applyIngestEvent(s: IngestState, e: IngestEvent, now: number): IngestState {
  switch (e.event) {
    case 'planned':
      return { ...s, total: e.files, lastAt: now };
    case 'started':
      return { ...s, current: e.path, pagesDone: 0, pagesTotal: 0, lastAt: now };
    case 'progress':
      return { ...s, current: e.path, pagesDone: e.pages_done, pagesTotal: e.pages_total, lastAt: now };
    case 'finished':
    case 'unchanged':
      return { ...s, done: s.done + 1, current: null, pagesDone: 0, pagesTotal: 0, lastAt: now, version: s.version + 1 };
    case 'failed':
      return {
        ...s,
        done: s.done + 1,
        current: null,
        pagesDone: 0,
        pagesTotal: 0,
        lastAt: now,
        failures: [...s.failures, { path: e.path, reason: e.reason || e.status.reason || e.status.status }],
        version: s.version + 1,
      };
    case 'removed':
      return { ...s, lastAt: now, version: s.version + 1 };
    default:
      return s;
  }
}

/** The fraction of the work done: whole files, plus the pages of the current one. */
export function fractionDone(s: IngestState): number {
  if (!s.total) return 0;
  const partial = s.pagesTotal > 0 ? s.pagesDone / s.pagesTotal : 0;
  return Math.min(1, (s.done + partial) / s.total);
}

type Job = { kind: 'ingest'; paths: string[] } | { kind: 'reindex'; id: string };

/** Runs ingest jobs one after another (drops, buttons, the typed path), with progress. */
export function useIngest() {
  const [state, setState] = useState<IngestState>(idle);
  const queue = useRef<Job[]>([]);
  const running = useRef(false);

  async function pump() {
    if (running.current) return;
    running.current = true;
    while (queue.current.length > 0) {
      const job = queue.current.shift()!;
      const now = Date.now();
      setState((s) => ({ ...idle, version: s.version, running: true, startedAt: now, lastAt: now, total: job.kind === 'reindex' ? 1 : null }));
      const onEvent = (e: IngestEvent) => setState((s) => applyIngestEvent(s, e, Date.now()));
      try {
        const report = job.kind === 'ingest' ? await ipc.ingest(job.paths, onEvent) : await ipc.reindexDocument(job.id, onEvent);
        setState((s) => ({ ...s, report, running: queue.current.length > 0, current: null, version: s.version + 1 }));
      } catch (error) {
        setState((s) => ({ ...s, error, running: queue.current.length > 0, current: null, version: s.version + 1 }));
      }
    }
    running.current = false;
  }

  return {
    state,
    ingest(paths: string[]) {
      const clean = paths.map((p) => p.trim()).filter(Boolean);
      if (clean.length === 0) return;
      queue.current.push({ kind: 'ingest', paths: clean });
      void pump();
    },
    reindex(id: string) {
      queue.current.push({ kind: 'reindex', id });
      void pump();
    },
    dismiss() {
      setState((s) => ({ ...idle, version: s.version }));
    },
  };
}

export type Ingest = ReturnType<typeof useIngest>;
