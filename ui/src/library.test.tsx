import { describe, expect, it } from 'vitest';
import { emit } from '@tauri-apps/api/event';
import { App } from './App';
import type { DocEntry, IngestReport } from './ipc';
import { applyIngestEvent, fractionDone, type IngestState } from './components/useIngest';
import { estimateRemaining } from './format';
import { $, $$, ChannelDriver, click, deferred, flush, mockCommands, mount, type, waitFor } from './test/helpers';

const doc = (over: Partial<DocEntry>): DocEntry => ({
  id: 'd1',
  path: '/docs/a.pdf',
  title: 'A',
  content_hash: 'h',
  pages: 3,
  chunks: 9,
  status: 'indexed',
  warning: null,
  embedded: true,
  kind: 'pdf',
  ...over,
});

describe('library', () => {
  it('ingests a typed path with progress, then lists documents with their status', async () => {
    let ingestArgs: Record<string, unknown> | null = null;
    const done = deferred<IngestReport>();
    let docs: DocEntry[] = [];
    const calls = mockCommands({
      list_documents: () => docs,
      list_folders: () => (ingestArgs ? ['/docs'] : []),
      ingest: (args) => {
        ingestArgs = args;
        return done.promise;
      },
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#nav-library'));
    await click($('#nav-library'));
    await waitFor(() => document.querySelector('#add-path'));
    await type($('#add-path') as HTMLInputElement, '  /docs  ');
    await click($('#add-path-button'));
    await waitFor(() => ingestArgs);
    expect(ingestArgs!.paths).toEqual(['/docs']);
    const ch = ChannelDriver.from(ingestArgs!);
    await ch.send({ event: 'planned', files: 4 });
    await ch.send({ event: 'started', path: '/docs/a.pdf' });
    await ch.send({ event: 'progress', path: '/docs/a.pdf', pages_done: 1, pages_total: 2 });
    expect($('#ingest-progress').dataset.active).toBe('true');
    expect($('#ingest-progress').textContent).toContain('0 of 4 files');
    expect($('#ingest-progress').textContent).toContain('a.pdf');
    expect(($('#ingest-progress progress') as HTMLProgressElement).value).toBeCloseTo(0.125);
    await ch.send({ event: 'finished', path: '/docs/a.pdf', chunks: 9, warning: null });
    await ch.send({ event: 'unchanged', path: '/docs/b.txt' });
    await ch.send({ event: 'failed', path: '/docs/c.pdf', status: { status: 'password_protected' }, reason: 'needs a password' });
    expect($('#ingest-progress').textContent).toContain('3 of 4 files');
    expect($('#ingest-progress').textContent).toContain('needs a password');
    docs = [
      doc({}),
      doc({ id: 'd2', path: '/docs/c.pdf', title: 'C', status: 'password_protected', reason: 'needs a password', pages: 0, chunks: 0 }),
      doc({ id: 'd3', path: '/docs/scan.pdf', title: 'Scan', status: 'no_text_layer', pages: 5, chunks: 0 }),
    ];
    done.resolve({ added: 1, updated: 0, unchanged: 1, removed: 0, failed: 1, pages: 3, chunks: 9, seconds: 2 });
    await flush();
    await waitFor(() => $$('#library .doc').length === 3);
    expect($$('#library .doc').map((d) => d.dataset.status)).toEqual(['indexed', 'password_protected', 'no_text_layer']);
    expect($('#library .doc[data-status="password_protected"]').textContent).toContain('needs a password');
    expect($('#ingest-progress').textContent).toContain('1 added');
    expect($('#ingest-progress').dataset.active).toBe('false');
    expect($('#folders').textContent).toContain('/docs');

    // Remove asks first.
    const row = $('#library .doc[data-id="d1"]');
    const removeBtn = Array.from(row.querySelectorAll('button')).find((b) => b.textContent === 'Remove')!;
    await click(removeBtn);
    expect(calls.some((c) => c.cmd === 'remove_document')).toBe(false);
    await click(row.querySelector('.confirm-yes')!);
    expect(calls.find((c) => c.cmd === 'remove_document')!.args).toEqual({ id: 'd1' });
  });

  it('re-indexes one document through its channel', async () => {
    const calls = mockCommands({
      list_documents: () => [doc({})],
      reindex_document: async (args) => {
        const ch = ChannelDriver.from(args);
        await ch.send({ event: 'started', path: '/docs/a.pdf' });
        await ch.send({ event: 'finished', path: '/docs/a.pdf', chunks: 9, warning: null });
        return { added: 0, updated: 1, unchanged: 0, removed: 0, failed: 0, pages: 3, chunks: 9, seconds: 1 };
      },
    });
    await mount(<App />);
    await click(await waitFor(() => document.querySelector('#nav-library')!));
    await waitFor(() => document.querySelector('#library .doc'));
    await click($('#library .doc button[aria-label="Re-index A"]'));
    await waitFor(() => $('#ingest-progress').textContent!.includes('1 updated'));
    expect(calls.find((c) => c.cmd === 'reindex_document')!.args.id).toBe('d1');
  });
});

describe('ingest progress', () => {
  const start: IngestState = {
    running: true, total: null, done: 0, current: null, pagesDone: 0, pagesTotal: 0,
    startedAt: 0, lastAt: 0, failures: [], report: null, error: null, version: 0,
  };

  it('counts files and pages, and estimates the time left', () => {
    let s = applyIngestEvent(start, { event: 'planned', files: 10 }, 0);
    expect(fractionDone(s)).toBe(0);
    s = applyIngestEvent(s, { event: 'finished', path: 'a', chunks: 1, warning: null }, 1000);
    s = applyIngestEvent(s, { event: 'started', path: 'b' }, 1000);
    s = applyIngestEvent(s, { event: 'progress', path: 'b', pages_done: 5, pages_total: 10 }, 1500);
    expect(s.done).toBe(1);
    expect(fractionDone(s)).toBeCloseTo(0.15);
    // 0.15 of the work in 3 s: 17 s to go.
    expect(estimateRemaining(3000, fractionDone(s))).toBeCloseTo(17);
    expect(estimateRemaining(3000, 0)).toBeNull();
  });

  it('shows what a watched folder gained without being asked', async () => {
    let docs: DocEntry[] = [doc({})];
    mockCommands({ list_documents: () => docs, list_folders: () => ['/docs'] }, { events: true });
    await mount(<App />);
    await waitFor(() => document.querySelector('#nav-library'));
    await click($('#nav-library'));
    await waitFor(() => $$('#library .doc').length === 1, 'the first document');
    docs = [doc({}), doc({ id: 'd2', path: '/docs/ward.md', title: 'Ward', kind: 'text' })];
    await emit('library-changed', { added: 1, updated: 0, unchanged: 1, removed: 0, failed: 0, pages: 1, chunks: 1, seconds: 0.1 });
    await waitFor(() => $$('#library .doc').length === 2, 'the file the folder gained');
    expect($$('#library .doc')[1].textContent).toContain('Ward');
  });
});
