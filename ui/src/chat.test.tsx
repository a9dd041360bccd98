import { describe, expect, it } from 'vitest';
import { App } from './App';
import type { Answer, AskResult, Source } from './ipc';
import { $, $$, ChannelDriver, click, deferred, flush, key, mockCommands, mount, status, type, waitFor } from './test/helpers';

const sources: Source[] = [
  { n: 1, doc_id: 'doc-a', path: '/docs/france.txt', title: 'France', page: 2, span: [6, 37], text: 'Paris is the capital of France.', score: 0.9 },
  { n: 2, doc_id: 'doc-b', path: '/docs/pop.pdf', title: 'Population', page: 4, span: [0, 20], text: 'About 68 million people', score: 0.7 },
];

function answer(over: Partial<Answer> = {}): Answer {
  return {
    answer: 'Paris is the capital of France [1]. It has 90 million people [2].',
    citations: [
      { n: 1, doc_id: 'doc-a', path: '/docs/france.txt', title: 'France', page: 2, span: [6, 37], quote: 'Paris is the capital of France.', inferred: false },
      { n: 2, doc_id: 'doc-b', path: '/docs/pop.pdf', title: 'Population', page: 4, span: [0, 20], quote: 'About 68 million people', inferred: false },
    ],
    unsupported_sentences: ['It has 90 million people [2].'],
    refused: false,
    invalid_citations: 0,
    sources,
    query: 'What is the capital of France?',
    draft: null,
    stop: null,
    timings: { retrieval_ms: 12, ttft_ms: 300, total_ms: 1500, prompt_tokens: 700, completion_tokens: 30 },
    ...over,
  };
}

/** Mounts the app with an `ask` whose events and result the test drives. */
async function setupChat() {
  let askArgs: Record<string, unknown> | null = null;
  const result = deferred<AskResult>();
  const calls = mockCommands({
    ask: (args) => {
      askArgs = args;
      return result.promise;
    },
    read_document: (args) => ({
      id: args.id,
      title: 'France',
      path: '/docs/france.txt',
      kind: 'text',
      pages: [
        { number: 1, text: 'Intro page.' },
        { number: 2, text: 'Note: Paris is the capital of France. More text.' },
        { number: 3, text: 'Last page.' },
      ],
    }),
  });
  await mount(<App />);
  await waitFor(() => document.querySelector('#question'));
  const ask = async (q: string) => {
    await type($('#question') as HTMLTextAreaElement, q);
    await key($('#question'), 'Enter');
    await waitFor(() => askArgs, 'ask to be called');
    return ChannelDriver.from(askArgs!);
  };
  return { calls, result, ask, args: () => askArgs };
}

describe('chat', () => {
  it('streams sources, then tokens, then the checked answer with chips and marks', async () => {
    const { calls, result, ask, args } = await setupChat();
    const ch = await ask('What is the capital of France?');
    expect(args()!.question).toBe('What is the capital of France?');
    expect(args()!.conversationId).toBeNull();
    expect($('#stop')).toBeTruthy();
    expect(document.querySelector('#send')).toBeNull();

    await ch.send({ type: 'sources', sources, refused: false });
    expect($$('#sources .source')).toHaveLength(2);
    expect($('#sources').textContent).toContain('France');
    expect($('.answer').dataset.complete).toBe('false');

    await ch.send({ type: 'token', text: 'Paris is ' });
    await ch.send({ type: 'token', text: 'the capital [1]' });
    expect($('.answer').textContent).toContain('Paris is the capital [1]');
    expect(document.querySelector('.citation')).toBeNull();

    await ch.send({ type: 'done', answer: answer({ draft: 'Paris, probably. [1]' }) });
    const bubble = $('.answer');
    expect(bubble.dataset.complete).toBe('true');
    const chips = $$('.answer .citation') as HTMLButtonElement[];
    expect(chips.map((c) => c.dataset.n)).toEqual(['1', '2']);
    expect(chips.map((c) => c.dataset.page)).toEqual(['2', '4']);
    expect(chips.every((c) => c.tagName === 'BUTTON')).toBe(true);
    const marks = $$('.answer .unsupported');
    expect(marks.map((m) => m.textContent).join('')).toContain('It has 90 million people');
    expect(marks[0].title).toBe('Not supported by the sources');
    // The supported sentence is not marked.
    expect(marks.some((m) => m.textContent!.includes('Paris'))).toBe(false);
    const draft = $('.answer details.draft');
    expect(draft.hasAttribute('open')).toBe(false);
    expect(draft.textContent).toContain("unchecked draft");

    result.resolve({ conversation_id: 5, answer: answer({ draft: 'Paris, probably. [1]' }) });
    await flush();
    expect($('#send')).toBeTruthy();
    expect(calls.filter((c) => c.cmd === 'list_conversations').length).toBeGreaterThanOrEqual(2);

    // A chip opens the viewer at the cited page with the passage highlighted.
    await click(chips[0]);
    await waitFor(() => document.querySelector('#viewer .highlight'), 'highlight');
    expect($('#viewer').dataset.page).toBe('2');
    expect($('#viewer .highlight').textContent).toBe('Paris is the capital of France.');
    expect(calls.find((c) => c.cmd === 'read_document')!.args).toEqual({ id: 'doc-a' });
    await click($('#viewer-next'));
    expect($('#viewer').dataset.page).toBe('3');
    expect(document.querySelector('#viewer .highlight')).toBeNull();
  });

  it('shows the refusal state with the closest passages', async () => {
    const { result, ask } = await setupChat();
    const ch = await ask('Who won the 1998 cup?');
    await ch.send({ type: 'sources', sources, refused: true });
    expect($('#sources h2').textContent).toBe('Closest passages');
    const refused = answer({ answer: 'I could not find this in your documents.', citations: [], unsupported_sentences: [], refused: true });
    await ch.send({ type: 'done', answer: refused });
    result.resolve({ conversation_id: 1, answer: refused });
    await flush();
    const box = $('.answer .refusal');
    expect(box.textContent).toContain('Not found in your documents');
    expect(box.querySelectorAll('.closest li')).toHaveLength(2);
    expect(document.querySelector('.answer .citation')).toBeNull();
    expect($('.answer').dataset.complete).toBe('true');
  });

  it('Enter sends, Shift+Enter does not, Esc stops while streaming', async () => {
    const { calls, result } = await setupChat();
    const q = $('#question') as HTMLTextAreaElement;
    await type(q, 'first line');
    await key(q, 'Enter', { shiftKey: true });
    expect(calls.some((c) => c.cmd === 'ask')).toBe(false);
    await key(q, 'Escape');
    expect(calls.some((c) => c.cmd === 'stop')).toBe(false);
    await key(q, 'Enter');
    await waitFor(() => calls.some((c) => c.cmd === 'ask'));
    expect(calls.filter((c) => c.cmd === 'ask')).toHaveLength(1);
    await key($('#question'), 'Escape');
    expect(calls.filter((c) => c.cmd === 'stop')).toHaveLength(1);
    await click($('#stop'));
    expect(calls.filter((c) => c.cmd === 'stop')).toHaveLength(2);
    result.resolve({ conversation_id: 2, answer: answer({ stop: 'cancelled' }) });
    await flush();
    expect($('.answer').dataset.complete).toBe('true');
  });

  it('a failed ask shows the error and its hint in the bubble', async () => {
    const { result, ask } = await setupChat();
    await ask('anything');
    result.reject({ code: 'context_overflow', message: 'prompt of 9000 tokens > 8192' });
    await flush();
    expect($('.answer .error-note').dataset.code).toBe('context_overflow');
    expect($('.answer').textContent).toContain('lower the number of passages');
  });

  it('loads the messages of a stored conversation', async () => {
    const calls = mockCommands({
      list_conversations: () => [
        { id: 1, title: 'Older', model: 'm', created_at: 1, updated_at: 10 },
        { id: 2, title: 'Newer', model: 'm', created_at: 2, updated_at: 20 },
      ],
      get_messages: () => [
        { id: 1, conversation_id: 2, role: 'user', text: 'Q?', citations: [], created_at: 1, complete: true, checks: null },
        {
          id: 2,
          conversation_id: 2,
          role: 'assistant',
          text: 'A is true [1]. B was never said.',
          citations: [{ doc_id: 'd', path: '/p', title: 'Doc', page: 3, span: [0, 4] }],
          created_at: 2,
          complete: true,
          checks: { unsupported_sentences: ['B was never said.'], refused: false },
        },
      ],
    });
    await mount(<App />);
    await waitFor(() => $$('#conversations .conversation').length === 2);
    expect($$('#conversations .conversation-title').map((e) => e.textContent)).toEqual(['Newer', 'Older']);
    // Clicking anywhere on the row opens it (end-to-end tests click the row).
    await click($('#conversations .conversation'));
    await waitFor(() => document.querySelector('.answer .citation'));
    expect(calls.find((c) => c.cmd === 'get_messages')!.args).toEqual({ conversationId: 2 });
    expect(($('.answer .citation') as HTMLButtonElement).dataset.n).toBe('1');
    expect($$('#sources .source')).toHaveLength(1);
    // What the check found is kept: the unsupported sentence is still marked.
    expect($$('.answer .unsupported').map((e) => e.textContent).join('')).toBe('B was never said.');
  });

  it('shows the first-run panel when there is no model', async () => {
    mockCommands({
      app_status: () => status({ model: null, model_error: { code: 'model_missing', message: 'no model in /models' } }),
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#no-model'));
    const text = $('#no-model').textContent!;
    expect(text).toContain('No language model yet');
    expect(text).toContain('Import a GGUF file…');
    expect(text).toContain("or run scripts/fetch-models.sh in Quire's folder");
    expect(($('#question') as HTMLTextAreaElement).disabled).toBe(true);
  });

  it('Ctrl+K focuses the conversation search', async () => {
    mockCommands({});
    await mount(<App />);
    await waitFor(() => document.querySelector('#conversation-search'));
    await key(document.body, 'k', { ctrlKey: true });
    expect(document.activeElement?.id).toBe('conversation-search');
  });
});
