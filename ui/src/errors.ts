// The error codes every IPC command can reject with. The Rust side has a test that parses
// this array literal and checks it equals its own list: keep it a plain array of strings.
export const ERROR_CODES = [
  'model_missing',
  'data_dir',
  'disk_full',
  'io',
  'wrong_key',
  'documents',
  'model_invalid',
  'embed_model_invalid',
  'model_unsupported',
  'context_overflow',
  'runtime',
  'key_missing',
  'keychain_unavailable',
  'keychain_locked',
  'keychain',
  'not_encrypted',
  'store_corrupt',
  'store_busy',
  'not_found',
  'invalid_input',
  'store',
  'not_ready',
  'busy',
  'in_use',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** What the person can do about each error. */
export const ERROR_HINTS: Record<ErrorCode, string> = {
  model_missing:
    "No language model is installed. Import a GGUF file in Settings, or run scripts/fetch-models.sh in Quire's folder.",
  data_dir: "Quire's data folder cannot be used. Check that it exists and that you may write to it, then retry.",
  disk_full: 'The disk is full. Free some space, then try again.',
  in_use: 'Another Quire window or quire command has this data folder open. Close it, then retry.',
  io: 'A file could not be read or written. Check that it still exists and that you have permission, then retry.',
  wrong_key: 'The passphrase is wrong, or the key does not match this data. Check it and try again.',
  documents: 'Some documents could not be read. The Library shows which, and why.',
  model_invalid: 'The model file is damaged or is not a GGUF model. Choose or import another one in Settings.',
  embed_model_invalid:
    "The embedding model is missing or damaged. Run scripts/fetch-models.sh in Quire's folder, or reinstall Quire.",
  model_unsupported: "This model's architecture is not supported. Choose another GGUF model in Settings.",
  context_overflow:
    "The text does not fit in the model's context. Ask a shorter question, or lower the number of passages in Settings.",
  runtime: 'The model failed while working. Try again; if it keeps happening, choose another model in Settings.',
  key_missing:
    'The encryption key is not in the system keychain. Retry, use a passphrase, or start afresh (the old data is kept aside).',
  keychain_unavailable: 'No system keychain is available on this computer. Use a passphrase instead.',
  keychain_locked: 'The system keychain is locked. Unlock it (log in to it), then retry.',
  keychain: 'The system keychain reported an error. Retry, or use a passphrase instead.',
  not_encrypted: 'The data folder is not encrypted as expected. Start afresh; the old folder is moved aside, not deleted.',
  store_corrupt: "Quire's data is damaged. Start afresh; the old folder is moved aside, not deleted.",
  store_busy: 'Another copy of Quire is using the data. Close it, then retry.',
  not_found: 'It no longer exists. The list has been refreshed.',
  invalid_input: 'Check what you entered and try again.',
  store: 'The database reported an error. Retry; if it keeps happening, restart Quire.',
  not_ready: 'Quire is not unlocked yet. Unlock it first.',
  busy: 'Quire is busy with another task. Wait for it to finish, or press Stop.',
  internal: 'Something unexpected went wrong. Restart Quire; if it happens again, please report it.',
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export function hintFor(code: ErrorCode): string {
  return ERROR_HINTS[code];
}
