import { afterEach } from 'vitest';
import { clearMocks } from '@tauri-apps/api/mocks';
import { render } from 'preact';

afterEach(() => {
  clearMocks();
  for (const el of Array.from(document.body.children)) {
    render(null, el);
    el.remove();
  }
});
