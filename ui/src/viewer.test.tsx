import { describe, expect, it } from 'vitest';
import { TextPage, Viewer } from './components/Viewer';
import { codePointSpan, highlightInSpans, splitBySpan } from './highlight';
import { $, click, key, mockCommands, mount, waitFor } from './test/helpers';

describe('code-point spans', () => {
  it('counts Unicode code points, not UTF-16 units', () => {
    // "😀" is 2 UTF-16 units but 1 code point (one Rust char); "é" is one either way.
    const text = '😀 café — naïve 𝔘nicode: the passage here.';
    const chars = Array.from(text);
    const start = chars.indexOf('t');
    const end = start + 'the passage'.length;
    expect(splitBySpan(text, [start, end]).mark).toBe('the passage');
    expect(codePointSpan('😀ab', 1, 2)).toEqual([2, 3]);
    expect(splitBySpan('abc', [5, 9])).toEqual({ before: 'abc', mark: '', after: '' });
    expect(splitBySpan('abc', null).mark).toBe('');
  });

  it('the note viewer wraps the span in <mark class="highlight"> after non-ASCII text', async () => {
    const text = 'Ünïcödé 😀😀 — 日本語のテキスト。The decision was to ship in May. Then more.';
    const chars = Array.from(text);
    const start = chars.indexOf('T');
    const end = start + Array.from('The decision was to ship in May.').length;
    const host = await mount(<TextPage text={text} span={[start, end]} />);
    const mark = host.querySelector('mark.highlight')!;
    expect(mark).not.toBeNull();
    expect(mark.textContent).toBe('The decision was to ship in May.');
    expect(host.textContent).toBe(text);
  });
});

describe('viewer', () => {
  it('opens a note at its page with the span highlighted, and pages through', async () => {
    const calls = mockCommands({
      read_document: () => ({
        id: 'note-3',
        title: 'Meeting — Zürich',
        path: 'note:3',
        kind: 'note',
        pages: [
          { number: 1, text: 'Première page: 😀 déjà vu. Decision: adopt Rust.' },
          { number: 2, text: 'Second page.' },
        ],
      }),
    });
    const text = 'Première page: 😀 déjà vu. Decision: adopt Rust.';
    const start = Array.from(text).indexOf('D');
    await mount(<Viewer target={{ docId: 'note-3', page: 1, span: [start, start + 'Decision: adopt Rust.'.length] }} onClose={() => {}} />);
    await waitFor(() => document.querySelector('#viewer .highlight'));
    expect(calls[0]).toEqual({ cmd: 'read_document', args: { id: 'note-3' } });
    expect($('#viewer').dataset.page).toBe('1');
    expect($('#viewer .highlight').textContent).toBe('Decision: adopt Rust.');
    expect($('#viewer .page-label').textContent).toBe('page 1 of 2');
    expect(($('#viewer-prev') as HTMLButtonElement).disabled).toBe(true);
    await click($('#viewer-next'));
    expect($('#viewer').dataset.page).toBe('2');
    expect($('#viewer .text-page').textContent).toBe('Second page.');
    expect(($('#viewer-next') as HTMLButtonElement).disabled).toBe(true);
    await key($('#viewer'), 'ArrowLeft');
    expect($('#viewer').dataset.page).toBe('1');
  });
});

describe('PDF text-layer highlight', () => {
  function layer(parts: string[]): HTMLElement[] {
    return parts.map((t) => {
      const s = document.createElement('span');
      s.textContent = t;
      return s;
    });
  }

  it('finds the quote across spans, ignoring case and whitespace', () => {
    const spans = layer(['Chapter 2', 'The  QUICK brown', 'fox jumps over', 'the lazy dog.', 'Unrelated line']);
    const hit = highlightInSpans(spans, 'the quick brown fox\njumps over the lazy');
    expect(hit.map((s) => s.textContent)).toEqual(['The  QUICK brown', 'fox jumps over', 'the lazy dog.']);
    expect(spans[0].classList.contains('highlight')).toBe(false);
    expect(spans[4].classList.contains('highlight')).toBe(false);
    expect(spans[1].classList.contains('highlight')).toBe(true);
  });

  it('falls back to the first eight words', () => {
    const spans = layer(['one two three four five six seven eight', 'nine ten (extraction differs here)']);
    const hit = highlightInSpans(spans, 'One two three four five six seven eight nine TEN eleven twelve');
    expect(hit).toHaveLength(1);
    expect(hit[0].textContent).toContain('one two');
  });

  it('marks nothing when the text is not there', () => {
    const spans = layer(['alpha beta']);
    expect(highlightInSpans(spans, 'gamma delta')).toEqual([]);
    expect(spans[0].classList.contains('highlight')).toBe(false);
  });
});
