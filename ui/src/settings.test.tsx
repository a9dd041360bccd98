import { describe, expect, it } from 'vitest';
import { App } from './App';
import { $, click, mockCommands, model, mount, type, waitFor } from './test/helpers';

describe('settings', () => {
  it('shows the model, the key mode, the data folder and the privacy statement; saves settings', async () => {
    const calls = mockCommands({
      list_models: () => [model, { ...model, path: '/models/small.gguf', name: 'Small' }],
      select_model: (args) => ({ ...model, path: String(args.path), name: 'Small' }),
      set_settings: (args) => args.settings,
    });
    await mount(<App />);
    await click(await waitFor(() => document.querySelector('#nav-settings')!));
    await waitFor(() => document.querySelector('#setting-k'));
    const info = $('#model-info').textContent!;
    expect(info).toContain('Qwen 2.5 3B Instruct');
    expect(info).toContain('qwen2');
    expect(info).toContain('3.1 B');
    expect(info).toContain('Q4_K_M');
    expect(info).toContain('32,768');
    expect($('#key-mode').textContent).toContain('keychain');
    expect($('#data-dir').textContent).toBe('/home/me/.local/share/quire');
    expect($('#about').textContent).toContain(
      'Quire makes no network connections. Your documents, notes and conversations never leave this computer.',
    );
    expect($('#about').textContent).toContain('0.1.0');

    await type($('#setting-k') as HTMLInputElement, '8');
    await click($('#settings-save'));
    expect(calls.find((c) => c.cmd === 'set_settings')!.args).toEqual({
      settings: { model_path: model.path, k: 8, max_answer_tokens: 512, temperature: 0.2 },
    });

    const radios = document.querySelectorAll<HTMLInputElement>('.model-option input');
    await click(radios[1]);
    await waitFor(() => calls.some((c) => c.cmd === 'select_model'));
    expect(calls.find((c) => c.cmd === 'select_model')!.args).toEqual({ path: '/models/small.gguf' });
    await waitFor(() => $('#model-info').textContent!.includes('Small'));
  });
});
