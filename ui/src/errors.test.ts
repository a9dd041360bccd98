import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERROR_HINTS } from './errors';
import src from './errors.ts?raw';

const CONTRACT = 'model_missing|data_dir|disk_full|io|wrong_key|documents|model_invalid|embed_model_invalid|model_unsupported|context_overflow|runtime|key_missing|keychain_unavailable|keychain_locked|keychain|not_encrypted|store_corrupt|store_busy|not_found|invalid_input|store|not_ready|busy|in_use|internal'.split('|');

describe('error codes', () => {
  it('are exactly the contract list, in order', () => {
    expect([...ERROR_CODES]).toEqual(CONTRACT);
  });

  it('each have a hint', () => {
    for (const code of ERROR_CODES) expect(ERROR_HINTS[code].length).toBeGreaterThan(10);
  });

  it('stay a plain array literal that the Rust test can parse', () => {
    const body = /export const ERROR_CODES = \[([\s\S]*?)\] as const;/.exec(src)?.[1];
    expect(body).toBeDefined();
    const parsed = Array.from(body!.matchAll(/['"]([a-z_]+)['"]/g), (m) => m[1]);
    expect(parsed).toEqual(CONTRACT);
  });
});
