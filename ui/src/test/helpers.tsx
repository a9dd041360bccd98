import { render, type ComponentChild } from 'preact';
import { act } from 'preact/test-utils';
import { mockIPC } from '@tauri-apps/api/mocks';
import type { AppStatus, ModelInfo } from '../ipc';

export const model: ModelInfo = {
  path: '/models/qwen.gguf',
  name: 'Qwen 2.5 3B Instruct',
  architecture: 'qwen2',
  parameters: 3_090_000_000,
  quantization: 'Q4_K_M',
  context_length: 32768,
  file_size: 1_930_000_000,
};

export function status(over: Partial<AppStatus> = {}): AppStatus {
  return {
    state: 'ready',
    error: null,
    actions: [],
    key_mode: 'keychain',
    data_dir: '/home/me/.local/share/quire',
    model,
    model_error: null,
    version: '0.1.0',
    ...over,
  };
}

export type Handler = (args: Record<string, unknown>) => unknown;

/** Mocks IPC with one handler per command; `calls` records every call. Commands without a
 * handler get sensible empty answers, so a screen can load. */
export function mockCommands(handlers: Record<string, Handler>, options: { events?: boolean } = {}) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  const defaults: Record<string, Handler> = {
    app_status: () => status(),
    list_conversations: () => [],
    list_documents: () => [],
    list_folders: () => [],
    list_notes: () => [],
    list_models: () => [model],
    get_settings: () => ({ model_path: model.path, k: 6, max_answer_tokens: 512, temperature: 0.2 }),
    stop: () => null,
  };
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args: a });
    const h = handlers[cmd] ?? defaults[cmd];
    return h ? h(a) : null;
  }, { shouldMockEvents: options.events ?? false });
  return calls;
}

interface TauriInternals {
  runCallback: (id: number, data: unknown) => void;
}

/** Sends messages down a Channel the way Tauri does: by callback id, with a running index. */
export class ChannelDriver {
  private index = 0;
  constructor(private readonly channel: { id: number }) {}
  static from(args: Record<string, unknown>): ChannelDriver {
    const ch = args.onEvent as { id: number } | undefined;
    if (!ch || typeof ch.id !== 'number') throw new Error('no onEvent channel in the arguments');
    return new ChannelDriver(ch);
  }
  async send(message: unknown) {
    const internals = (window as unknown as { __TAURI_INTERNALS__: TauriInternals }).__TAURI_INTERNALS__;
    await act(async () => {
      internals.runCallback(this.channel.id, { index: this.index++, message });
    });
  }
}

/** A promise with its resolve/reject exposed. */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export async function mount(node: ComponentChild): Promise<HTMLElement> {
  const host = document.createElement('div');
  document.body.appendChild(host);
  await act(async () => {
    render(node, host);
  });
  await flush();
  return host;
}

/** Lets pending promises, effects and renders run. */
export async function flush(times = 5) {
  for (let i = 0; i < times; i++) {
    await act(async () => {
      await new Promise((r) => setTimeout(r, 0));
    });
  }
}

/** Polls until `f` returns a truthy value (or throws after ~1 s). */
export async function waitFor<T>(f: () => T | null | undefined | false, what = 'condition'): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = f();
    if (v) return v;
    await flush(1);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function $(sel: string, root: ParentNode = document): HTMLElement {
  const el = root.querySelector(sel);
  if (!el) throw new Error(`no element for ${sel}`);
  return el as HTMLElement;
}

export function $$(sel: string, root: ParentNode = document): HTMLElement[] {
  return Array.from(root.querySelectorAll(sel)) as HTMLElement[];
}

export async function click(el: Element) {
  await act(async () => {
    (el as HTMLElement).click();
  });
  await flush();
}

export async function type(el: HTMLInputElement | HTMLTextAreaElement, value: string) {
  await act(async () => {
    el.value = value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

export async function key(el: Element, keyName: string, opts: KeyboardEventInit = {}) {
  await act(async () => {
    el.dispatchEvent(new KeyboardEvent('keydown', { key: keyName, bubbles: true, cancelable: true, ...opts }));
  });
  await flush();
}
