import { describe, expect, it } from 'vitest';
import { App } from './App';
import { ErrorBoundary } from './components/common';
import { $, $$, click, mockCommands, mount, status, type, waitFor } from './test/helpers';

describe('start-up screen', () => {
  it('ready shows the main app', async () => {
    mockCommands({ app_status: () => status() });
    await mount(<App />);
    await waitFor(() => document.querySelector('#app-ready'), '#app-ready');
    for (const id of ['nav-chat', 'nav-library', 'nav-notes', 'nav-settings', 'question']) {
      expect(document.getElementById(id), id).not.toBeNull();
    }
    expect(document.querySelector('#passphrase')).toBeNull();
  });

  it('needs_passphrase unlocks, and shows the hint on a wrong key', async () => {
    let tries = 0;
    const calls = mockCommands({
      app_status: () => status({ state: 'needs_passphrase', key_mode: 'passphrase' }),
      unlock: (args) => {
        tries++;
        // As the Rust side answers a wrong passphrase: the same screen, with the error.
        if (args.passphrase !== 'correct horse')
          return status({
            state: 'needs_passphrase',
            key_mode: 'passphrase',
            error: { code: 'wrong_key', message: 'wrong passphrase' },
          });
        return status({ key_mode: 'passphrase' });
      },
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#passphrase'));
    expect(document.querySelector('#app-ready')).toBeNull();
    await type($('#passphrase') as HTMLInputElement, 'battery staple');
    await click($('#unlock'));
    await waitFor(() => document.querySelector('.error-note'));
    expect($('.error-note').dataset.code).toBe('wrong_key');
    expect($('.error-note').textContent).toContain('wrong passphrase');
    expect($('.error-note').textContent).toContain('passphrase is wrong');
    expect(document.querySelector('#app-ready')).toBeNull();

    await type($('#passphrase') as HTMLInputElement, 'correct horse');
    await click($('#unlock'));
    await waitFor(() => document.querySelector('#app-ready'), '#app-ready');
    expect(tries).toBe(2);
    expect(calls.filter((c) => c.cmd === 'unlock').map((c) => c.args)).toEqual([
      { passphrase: 'battery staple' },
      { passphrase: 'correct horse' },
    ]);
  });

  it('setup_passphrase asks twice and needs both to match', async () => {
    const calls = mockCommands({
      app_status: () => status({ state: 'setup_passphrase', key_mode: 'passphrase' }),
      unlock: () => status({ key_mode: 'passphrase' }),
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#passphrase-again'));
    await type($('#passphrase') as HTMLInputElement, 'long enough phrase');
    await type($('#passphrase-again') as HTMLInputElement, 'long enough phrasX');
    expect(($('#unlock') as HTMLButtonElement).disabled).toBe(true);
    expect($('#passphrase-rules').textContent).toContain('differ');
    await type($('#passphrase-again') as HTMLInputElement, 'long enough phrase');
    expect(($('#unlock') as HTMLButtonElement).disabled).toBe(false);
    await click($('#unlock'));
    await waitFor(() => document.querySelector('#app-ready'));
    expect(calls.find((c) => c.cmd === 'unlock')!.args).toEqual({ passphrase: 'long enough phrase' });
  });

  it('error shows the message and one button per action', async () => {
    mockCommands({
      app_status: () =>
        status({
          state: 'error',
          error: { code: 'keychain_unavailable', message: 'no Secret Service on this desktop' },
          actions: ['retry', 'use_passphrase', 'start_afresh'],
        }),
      use_passphrase: () => status({ state: 'setup_passphrase', key_mode: 'passphrase' }),
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#startup[data-state="error"]'));
    expect($('#start-error-message').textContent).toBe('no Secret Service on this desktop');
    expect($$('#startup .actions button').map((b) => b.textContent)).toEqual(['Retry', 'Use a passphrase instead', 'Start afresh']);
    await click($('#action-use_passphrase'));
    await waitFor(() => document.querySelector('#passphrase-again'), 'setup form');
  });

  it('error offers only the actions given', async () => {
    mockCommands({
      app_status: () => status({ state: 'error', error: { code: 'store_busy', message: 'locked by pid 42' }, actions: ['retry'] }),
      retry: () => status(),
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#action-retry'));
    expect(document.querySelector('#action-start_afresh')).toBeNull();
    await click($('#action-retry'));
    await waitFor(() => document.querySelector('#app-ready'));
  });

  it('start afresh confirms first, then shows where the old data went', async () => {
    const calls = mockCommands({
      app_status: () =>
        status({ state: 'error', error: { code: 'store_corrupt', message: 'bad header' }, actions: ['start_afresh'] }),
      start_afresh: () => ({ moved_to: '/home/me/.local/share/quire.broken-1', status: status() }),
    });
    await mount(<App />);
    await waitFor(() => document.querySelector('#action-start_afresh'));
    await click($('#action-start_afresh'));
    expect(calls.some((c) => c.cmd === 'start_afresh')).toBe(false);
    expect(document.body.textContent).toContain('moved aside, not deleted');
    await click($('#confirm-afresh'));
    await waitFor(() => document.querySelector('#app-ready'));
    expect($('#moved-notice').textContent).toContain('/home/me/.local/share/quire.broken-1');
  });

  it('a failing app_status still shows a screen with Retry', async () => {
    let n = 0;
    mockCommands({ app_status: () => (n++ === 0 ? Promise.reject({ code: 'data_dir', message: 'read-only' }) : status()) });
    await mount(<App />);
    await waitFor(() => document.querySelector('#startup[data-state="failed"]'));
    expect(document.body.textContent).toContain('read-only');
    await click($$('#startup button').find((b) => b.textContent === 'Retry')!);
    await waitFor(() => document.querySelector('#app-ready'));
  });
});

describe('error boundary', () => {
  it('renders a JS error instead of a blank window', async () => {
    function Broken(): never {
      throw new Error('kaboom in render');
    }
    const origError = console.error;
    console.error = () => {};
    try {
      await mount(
        <ErrorBoundary>
          <Broken />
        </ErrorBoundary>,
      );
    } finally {
      console.error = origError;
    }
    expect($('#fatal-error').textContent).toContain('kaboom in render');
  });
});
