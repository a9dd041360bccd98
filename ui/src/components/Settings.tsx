import { useEffect, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { AppStatus, ModelInfo, Settings as SettingsT } from '../ipc';
import { basename, formatBytes, formatParams } from '../format';
import { ErrorNote } from './common';

export function Settings(props: { status: AppStatus; onModel: (m: ModelInfo) => void }) {
  const { status } = props;
  const [models, setModels] = useState<ModelInfo[] | null>(null);
  const [settings, setSettingsState] = useState<SettingsT | null>(null);
  const [draft, setDraft] = useState<SettingsT | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  async function reload() {
    try {
      const [m, s] = await Promise.all([ipc.listModels(), ipc.getSettings()]);
      setModels(m);
      setSettingsState(s);
      setDraft(s);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    void reload();
  }, []);

  const selectedPath = status.model?.path ?? settings?.model_path ?? null;

  async function choose(path: string) {
    setBusy(true);
    setError(null);
    try {
      props.onModel(await ipc.selectModel(path));
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function importOne() {
    setError(null);
    try {
      const path = await ipc.pickModelFile();
      if (!path) return;
      setBusy(true);
      props.onModel(await ipc.importModel(path));
      await reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function save(e: Event) {
    e.preventDefault();
    if (!draft) return;
    setError(null);
    setSaved(false);
    try {
      const s = await ipc.setSettings(draft);
      setSettingsState(s);
      setDraft(s);
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  }

  const num = (key: 'k' | 'max_answer_tokens' | 'temperature') => (e: Event) => {
    const v = Number((e.currentTarget as HTMLInputElement).value);
    if (draft && Number.isFinite(v)) setDraft({ ...draft, [key]: v });
    setSaved(false);
  };

  const current = status.model;

  return (
    <section id="settings" class="settings page" aria-label="Settings">
      <header class="page-bar">
        <h1>Settings</h1>
      </header>
      <ErrorNote error={error} onDismiss={() => setError(null)} />

      <section class="card" aria-labelledby="model-h">
        <h2 id="model-h">Language model</h2>
        {current ? (
          <ModelDetails model={current} />
        ) : (
          <p class="warning">{status.model_error?.message ?? 'No language model is installed.'}</p>
        )}
        <fieldset class="model-list" disabled={busy}>
          <legend>Installed models</legend>
          {models === null && <p class="muted">Loading…</p>}
          {models?.length === 0 && <p class="muted">None. Import a GGUF file, or run scripts/fetch-models.sh in Quire's folder.</p>}
          {models?.map((m) => (
            <label key={m.path} class="model-option">
              <input type="radio" name="model" checked={m.path === selectedPath} onChange={() => void choose(m.path)} />
              <span>
                {m.name ?? basename(m.path)}{' '}
                <span class="muted small">
                  {m.architecture} · {formatParams(m.parameters)} · {m.quantization ?? '?'} · {formatBytes(m.file_size)}
                </span>
              </span>
            </label>
          ))}
        </fieldset>
        <button type="button" id="import-model" disabled={busy} onClick={() => void importOne()}>
          {busy ? 'Working…' : 'Import a GGUF file…'}
        </button>
      </section>

      <form class="card" aria-labelledby="gen-h" onSubmit={save}>
        <h2 id="gen-h">Answers</h2>
        {draft ? (
          <>
            <div class="field">
              <label for="setting-k">Passages per answer</label>
              <input id="setting-k" type="number" min={1} max={20} step={1} value={draft.k} onInput={num('k')} />
            </div>
            <div class="field">
              <label for="setting-max-tokens">Longest answer (tokens)</label>
              <input
                id="setting-max-tokens"
                type="number"
                min={16}
                max={1024}
                step={16}
                value={draft.max_answer_tokens}
                onInput={num('max_answer_tokens')}
              />
            </div>
            <div class="field">
              <label for="setting-temperature">Temperature</label>
              <input
                id="setting-temperature"
                type="number"
                min={0}
                max={2}
                step={0.05}
                value={draft.temperature}
                onInput={num('temperature')}
              />
            </div>
            <div class="actions">
              <button type="submit" id="settings-save" class="primary">
                Save
              </button>
              {saved && (
                <span class="muted small" role="status">
                  Saved.
                </span>
              )}
            </div>
          </>
        ) : (
          <p class="muted">Loading…</p>
        )}
      </form>

      <section class="card" aria-labelledby="data-h">
        <h2 id="data-h">Your data</h2>
        <dl class="facts">
          <dt>Encryption key</dt>
          <dd id="key-mode">
            {status.key_mode === 'keychain' ? 'Kept in the system keychain' : 'Derived from your passphrase'}
          </dd>
          <dt>Data folder</dt>
          <dd>
            <code id="data-dir">{status.data_dir}</code>
          </dd>
        </dl>
      </section>

      <section class="card" id="about" aria-labelledby="about-h">
        <h2 id="about-h">About Quire</h2>
        <p>
          <strong>Quire makes no network connections. Your documents, notes and conversations never leave this computer.</strong>
        </p>
        <p class="muted">Version {status.version}</p>
      </section>
    </section>
  );
}

function ModelDetails({ model }: { model: ModelInfo }) {
  return (
    <dl class="facts model-info" id="model-info">
      <dt>Name</dt>
      <dd>{model.name ?? basename(model.path)}</dd>
      <dt>Architecture</dt>
      <dd>{model.architecture}</dd>
      <dt>Parameters</dt>
      <dd>{formatParams(model.parameters)}</dd>
      <dt>Quantization</dt>
      <dd>{model.quantization ?? 'unknown'}</dd>
      <dt>Context</dt>
      <dd>{model.context_length != null ? `${model.context_length.toLocaleString()} tokens` : "not stated in the file"}</dd>
      <dt>File size</dt>
      <dd>{formatBytes(model.file_size)}</dd>
      <dt>File</dt>
      <dd>
        <code>{model.path}</code>
      </dd>
    </dl>
  );
}
