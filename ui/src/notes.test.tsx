import { describe, expect, it } from 'vitest';
import { App } from './App';
import type { Note, Summary } from './ipc';
import { $, $$, ChannelDriver, click, deferred, flush, mockCommands, mount, type, waitFor } from './test/helpers';

describe('notes', () => {
  it('creates a note with a sanitized preview and saves it', async () => {
    const notes: Note[] = [];
    const calls = mockCommands({
      list_notes: () => notes,
      add_note: (args) => {
        const n: Note = { id: 1, title: String(args.title), body: String(args.body), tags: [], created_at: 1, updated_at: 1 };
        notes.push(n);
        return n;
      },
    });
    await mount(<App />);
    await click(await waitFor(() => document.querySelector('#nav-notes')!));
    await click(await waitFor(() => document.querySelector('#note-new')!));
    await type($('#note-title') as HTMLInputElement, 'Standup');
    await type($('#note-body') as HTMLTextAreaElement, '# Plan\n\n- **ship** it\n\n<img src=x onerror=alert(1)><script>alert(2)</script>');
    const preview = $('.note-preview');
    expect(preview.querySelector('h1')?.textContent).toBe('Plan');
    expect(preview.querySelector('strong')?.textContent).toBe('ship');
    expect(preview.querySelector('script, img')).toBeNull();
    expect(preview.innerHTML).not.toMatch(/onerror/);
    await click($('#note-save'));
    await waitFor(() => $$('#notes .note').length === 1);
    expect(calls.find((c) => c.cmd === 'add_note')!.args.title).toBe('Standup');
    expect($('#notes .note').textContent).toContain('Standup');
  });

  it('summarizes a meeting note with progress, Stop, and the structured result', async () => {
    const note: Note = { id: 7, title: 'Board meeting', body: 'text', tags: [], created_at: 1, updated_at: 2 };
    let sumArgs: Record<string, unknown> | null = null;
    const result = deferred<Summary>();
    const calls = mockCommands({
      list_notes: () => [note],
      summarize: (args) => {
        sumArgs = args;
        return result.promise;
      },
    });
    await mount(<App />);
    await click(await waitFor(() => document.querySelector('#nav-notes')!));
    await click(await waitFor(() => document.querySelector('#notes .note button')!));
    await click($('#note-summarize'));
    await waitFor(() => sumArgs);
    expect(sumArgs!.target).toEqual({ note_id: 7 });
    const ch = ChannelDriver.from(sumArgs!);
    await ch.send({ type: 'piece_started', index: 0, total: 2 });
    expect($('#summary-progress').textContent).toContain('part 1 of 2');
    await ch.send({ type: 'token', index: 0, text: 'Budget ' });
    expect($('#summary').textContent).toContain('Budget');
    const piece0 = { index: 0, first_page: 1, last_page: 1, section: 'Budget', summary: 'Budget **approved**.', tokens: 5 };
    await ch.send({ type: 'piece_done', piece: piece0, total: 2 });
    await ch.send({ type: 'piece_started', index: 1, total: 2 });
    expect($('#summary-progress').textContent).toContain('part 2 of 2');
    await click($('#summary-stop'));
    expect(calls.some((c) => c.cmd === 'stop')).toBe(true);
    result.resolve({
      title: 'Board meeting',
      summary: 'The board met.',
      pieces: [piece0],
      meeting: {
        decisions: [{ text: 'Approve the budget', owner: null, due: null, section: 'Budget', page: 1, span: [0, 5] }],
        action_items: [{ text: 'Send minutes', owner: 'Ana', due: 'Friday', section: 'AOB', page: 1, span: [6, 9] }],
        open_questions: [],
      },
      cancelled: true,
      total_ms: 1200,
    });
    await flush();
    expect(document.querySelector('#summary-progress')).toBeNull();
    expect($('#decisions').textContent).toContain('Approve the budget');
    expect($('#decisions').textContent).toContain('Budget');
    expect($('#action-items').textContent).toContain('owner: Ana, due Friday');
    expect($('#open-questions').textContent).toContain('None.');
    expect($('#summary .pieces').textContent).toContain('Page 1 · Budget');
    expect($('#summary .pieces strong')?.textContent).toBe('approved');
    expect($('#summary').textContent).toContain('Stopped before the end');
  });
});
