import { useEffect, useState } from 'preact/hooks';
import * as ipc from './ipc';
import type { AppStatus } from './ipc';
import { ErrorNote } from './components/common';
import { SetupPassphraseForm, StartErrorScreen, UnlockForm } from './components/Startup';
import { MainApp } from './components/MainApp';

type Phase = { kind: 'loading' } | { kind: 'status'; status: AppStatus } | { kind: 'failed'; error: unknown };

/** Start-up: asks `app_status` and shows the screen for its state. */
export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' });
  const [movedTo, setMovedTo] = useState<string | null>(null);

  async function load() {
    setPhase({ kind: 'loading' });
    try {
      setPhase({ kind: 'status', status: await ipc.appStatus() });
    } catch (error) {
      setPhase({ kind: 'failed', error });
    }
  }

  useEffect(() => {
    void load();
  }, []);

  const onStatus = (status: AppStatus) => setPhase({ kind: 'status', status });

  const notice = movedTo && (
    <div class="notice" role="status" id="moved-notice">
      Your previous data folder was moved aside, not deleted: <code>{movedTo}</code>
      <button type="button" class="icon" aria-label="Dismiss" onClick={() => setMovedTo(null)}>
        ×
      </button>
    </div>
  );

  if (phase.kind === 'loading') {
    return (
      <main class="startup" id="startup" data-state="loading" aria-busy="true">
        <p class="muted">Starting Quire…</p>
      </main>
    );
  }
  if (phase.kind === 'failed') {
    return (
      <main class="startup" id="startup" data-state="failed">
        <section class="card" role="alert">
          <h1>Quire could not start</h1>
          <ErrorNote error={phase.error} />
          <div class="actions">
            <button type="button" class="primary" onClick={() => void load()}>
              Retry
            </button>
          </div>
        </section>
      </main>
    );
  }
  const { status } = phase;
  let screen;
  switch (status.state) {
    case 'ready':
      screen = <MainApp status={status} onStatus={onStatus} />;
      break;
    case 'needs_passphrase':
      screen = <UnlockForm status={status} onStatus={onStatus} />;
      break;
    case 'setup_passphrase':
      screen = <SetupPassphraseForm status={status} onStatus={onStatus} />;
      break;
    default:
      screen = <StartErrorScreen status={status} onStatus={onStatus} onMoved={setMovedTo} />;
  }
  return (
    <>
      {notice}
      {screen}
    </>
  );
}
