import { useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { AppStatus, StartAction } from '../ipc';
import { hintFor } from '../errors';
import { ErrorNote } from './common';

/** needs_passphrase: open the encrypted data with the passphrase. */
export function UnlockForm({ status, onStatus }: { status: AppStatus; onStatus: (s: AppStatus) => void }) {
  const [passphrase, setPassphrase] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: Event) {
    e.preventDefault();
    if (!passphrase || busy) return;
    setBusy(true);
    setError(null);
    try {
      const next = await ipc.unlock(passphrase);
      setPassphrase('');
      onStatus(next);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="startup" id="startup" data-state={status.state}>
      <form class="card" onSubmit={submit} aria-labelledby="unlock-title">
        <h1 id="unlock-title">Unlock Quire</h1>
        <p>Your documents, notes and conversations are encrypted with your passphrase.</p>
        <label for="passphrase">Passphrase</label>
        <input
          id="passphrase"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={passphrase}
          onInput={(e) => setPassphrase((e.currentTarget as HTMLInputElement).value)}
        />
        <ErrorNote error={error ?? status.error} />
        <button id="unlock" type="submit" class="primary" disabled={busy || !passphrase}>
          {busy ? 'Unlocking…' : 'Unlock'}
        </button>
        <p class="muted small">Data folder: {status.data_dir}</p>
      </form>
    </main>
  );
}

const MIN_PASSPHRASE = 8;

/** setup_passphrase: no keychain, so the person chooses a passphrase (typed twice). */
export function SetupPassphraseForm({ status, onStatus }: { status: AppStatus; onStatus: (s: AppStatus) => void }) {
  const [first, setFirst] = useState('');
  const [second, setSecond] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const mismatch = second.length > 0 && first !== second;
  const tooShort = first.length > 0 && first.length < MIN_PASSPHRASE;
  const ok = first.length >= MIN_PASSPHRASE && first === second;

  async function submit(e: Event) {
    e.preventDefault();
    if (!ok || busy) return;
    setBusy(true);
    setError(null);
    try {
      onStatus(await ipc.unlock(first));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="startup" id="startup" data-state={status.state}>
      <form class="card" onSubmit={submit} aria-labelledby="setup-title">
        <h1 id="setup-title">Choose a passphrase</h1>
        <p>
          There is no system keychain to keep Quire's key, so your data will be encrypted with a passphrase. You will type it
          each time Quire starts. It cannot be recovered if you forget it.
        </p>
        <label for="passphrase">Passphrase</label>
        <input
          id="passphrase"
          type="password"
          autoComplete="new-password"
          autoFocus
          value={first}
          aria-describedby="passphrase-rules"
          onInput={(e) => setFirst((e.currentTarget as HTMLInputElement).value)}
        />
        <label for="passphrase-again">The same passphrase again</label>
        <input
          id="passphrase-again"
          type="password"
          autoComplete="new-password"
          value={second}
          onInput={(e) => setSecond((e.currentTarget as HTMLInputElement).value)}
        />
        <p id="passphrase-rules" class={tooShort || mismatch ? 'warning' : 'muted small'} aria-live="polite">
          {tooShort
            ? `At least ${MIN_PASSPHRASE} characters.`
            : mismatch
              ? 'The two passphrases differ.'
              : `At least ${MIN_PASSPHRASE} characters; a few unrelated words are easy to remember.`}
        </p>
        <ErrorNote error={error ?? status.error} />
        <button id="unlock" type="submit" class="primary" disabled={!ok || busy}>
          {busy ? 'Setting up…' : 'Encrypt and start'}
        </button>
        <p class="muted small">Data folder: {status.data_dir}</p>
      </form>
    </main>
  );
}

const ACTION_LABELS: Record<StartAction, string> = {
  retry: 'Retry',
  use_passphrase: 'Use a passphrase instead',
  start_afresh: 'Start afresh',
};

/** error: what went wrong, and the actions the Rust side offers. */
export function StartErrorScreen({
  status,
  onStatus,
  onMoved,
}: {
  status: AppStatus;
  onStatus: (s: AppStatus) => void;
  onMoved: (path: string) => void;
}) {
  const [busy, setBusy] = useState<StartAction | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const err = status.error;

  async function run(action: StartAction) {
    setBusy(action);
    setError(null);
    try {
      if (action === 'retry') onStatus(await ipc.retry());
      else if (action === 'use_passphrase') onStatus(await ipc.usePassphrase());
      else {
        const { moved_to, status: next } = await ipc.startAfresh();
        onMoved(moved_to);
        onStatus(next);
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
      setConfirming(false);
    }
  }

  return (
    <main class="startup" id="startup" data-state="error">
      <section class="card" role="alert" aria-labelledby="start-error-title">
        <h1 id="start-error-title">Quire could not open your data</h1>
        <p class="error-message" id="start-error-message">
          {err?.message ?? 'An unknown problem stopped Quire from starting.'}
        </p>
        {err && <p class="error-hint">{hintFor(err.code)}</p>}
        <ErrorNote error={error} />
        {confirming ? (
          <div class="confirm-afresh" role="group" aria-labelledby="afresh-q">
            <p id="afresh-q">
              Start afresh? The current data folder will be <strong>moved aside, not deleted</strong>, and Quire will start
              with an empty library. You can restore it later by moving it back.
            </p>
            <div class="actions">
              <button type="button" id="confirm-afresh" class="danger" disabled={busy !== null} onClick={() => run('start_afresh')}>
                Move it aside and start afresh
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </div>
          </div>
        ) : (
          <div class="actions">
            {status.actions.map((a) => (
              <button
                type="button"
                key={a}
                id={`action-${a}`}
                class={a === 'retry' ? 'primary' : a === 'start_afresh' ? 'danger' : undefined}
                disabled={busy !== null}
                onClick={() => (a === 'start_afresh' ? setConfirming(true) : run(a))}
              >
                {busy === a ? `${ACTION_LABELS[a]}…` : ACTION_LABELS[a]}
              </button>
            ))}
          </div>
        )}
        <p class="muted small">Data folder: {status.data_dir}</p>
      </section>
    </main>
  );
}
