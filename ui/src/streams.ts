// WebKitGTK's ReadableStream has no async iterator (`for await (const x of stream)`),
// which pdf.js's getTextContent uses; without it the text layer — and so the cited
// passage's highlight — fails with "undefined is not a function". Installed once, before
// pdf.js runs, and only where it is missing.
export function installReadableStreamIterator(): void {
  if (typeof ReadableStream === 'undefined') return;
  const proto = ReadableStream.prototype as unknown as Record<symbol | string, unknown>;
  if (typeof proto[Symbol.asyncIterator] === 'function') return;
  async function* values<T>(this: ReadableStream<T>): AsyncGenerator<T, void, undefined> {
    const reader = this.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value as T;
      }
    } finally {
      reader.releaseLock();
    }
  }
  Object.defineProperty(proto, Symbol.asyncIterator, { value: values, configurable: true, writable: true });
  if (typeof proto.values !== 'function') {
    Object.defineProperty(proto, 'values', { value: values, configurable: true, writable: true });
  }
}
