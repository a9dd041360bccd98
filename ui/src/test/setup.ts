import { afterEach } from 'vitest';
import { clearMocks } from '@tauri-apps/api/mocks';
import { render } from 'preact';
import { act } from 'preact/test-utils';

/** Preact runs effects after paint: on the next animation frame, or after 100 ms. */
const AFTER_PAINT_MS = 110;

afterEach(async () => {
  // Unmount first, so effect cleanups (event unlisteners) still find the IPC mocks.
  await act(async () => {
    for (const el of Array.from(document.body.children)) {
      render(null, el);
      el.remove();
    }
  });
  // Let effects already scheduled run now, while the DOM still exists: one left for a
  // timer would otherwise fire after the test file's environment is gone ("window is
  // not defined" from an effect cleanup, seen once in CI).
  await new Promise((r) => setTimeout(r, AFTER_PAINT_MS));
  clearMocks();
});
