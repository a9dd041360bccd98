import { Component, type ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { IpcError, toIpcError } from '../ipc';

/** An error from a command: the message, and what the person can do about it. */
export function ErrorNote({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error == null) return null;
  const e = toIpcError(error);
  return (
    <div class="error-note" role="alert" data-code={e.code}>
      <p class="error-message">{e.message}</p>
      <p class="error-hint">{e.hint}</p>
      {e.code === 'internal' && e.stack && (
        <details class="error-details">
          <summary>Details</summary>
          <pre>{e.stack}</pre>
        </details>
      )}
      {onDismiss && (
        <button type="button" class="icon" aria-label="Dismiss the error" onClick={onDismiss}>
          ×
        </button>
      )}
    </div>
  );
}

/** A button that asks for confirmation in place before doing something destructive. */
export function ConfirmButton(props: {
  label: string;
  confirmLabel: string;
  question: string;
  onConfirm: () => void;
  ariaLabel?: string;
  class?: string;
  icon?: string;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button
        type="button"
        class={props.class ?? (props.icon ? 'icon' : undefined)}
        aria-label={props.ariaLabel ?? props.label}
        title={props.ariaLabel ?? props.label}
        onClick={() => setAsking(true)}
      >
        {props.icon ?? props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      <span class="confirm-question">{props.question}</span>
      <button
        type="button"
        class="danger confirm-yes"
        ref={(el) => el?.focus()}
        onClick={() => {
          setAsking(false);
          props.onConfirm();
        }}
      >
        {props.confirmLabel}
      </button>
      <button type="button" class="confirm-no" onClick={() => setAsking(false)} onKeyDown={(e) => e.key === 'Escape' && setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** Already-sanitized HTML (from renderMarkdown) as a block. */
export function SafeHtml({ html, class: cls }: { html: string; class?: string }) {
  return <div class={cls} dangerouslySetInnerHTML={{ __html: html }} />;
}

interface BoundaryState {
  error: Error | null;
}

/** Renders any JS error instead of leaving a blank window. */
export class ErrorBoundary extends Component<{ children?: ComponentChildren }, BoundaryState> {
  state: BoundaryState = { error: null };

  static getDerivedStateFromError(error: unknown): BoundaryState {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  componentDidCatch(error: unknown) {
    // eslint-disable-next-line no-console
    console.error('Quire UI error', error);
  }

  render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    const ipc = error instanceof IpcError ? error : null;
    return (
      <main class="fatal" id="fatal-error">
        <div role="alert">
        <h1>Something went wrong in Quire's window</h1>
        <p class="error-message">{error.message}</p>
        {ipc && <p class="error-hint">{ipc.hint}</p>}
        <p>Your documents and notes are safe. Try again; if this keeps happening, restart Quire.</p>
        <div class="actions">
          <button type="button" onClick={() => this.setState({ error: null })}>
            Try again
          </button>
          <button type="button" onClick={() => location.reload()}>
            Reload the window
          </button>
        </div>
        {error.stack && (
          <details>
            <summary>Technical details</summary>
            <pre>{error.stack}</pre>
          </details>
        )}
        </div>
      </main>
    );
  }
}
