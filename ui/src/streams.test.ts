import { describe, expect, it } from 'vitest';
import { installReadableStreamIterator } from './streams';

describe('ReadableStream async iteration', () => {
  it('works after install even where the engine lacks it', async () => {
    const proto = ReadableStream.prototype as unknown as Record<symbol, unknown>;
    const saved = proto[Symbol.asyncIterator];
    // Simulate WebKitGTK: no async iterator.
    delete proto[Symbol.asyncIterator];
    try {
      installReadableStreamIterator();
      const stream = new ReadableStream<number>({
        start(c) {
          [1, 2, 3].forEach((n) => c.enqueue(n));
          c.close();
        },
      });
      const seen: number[] = [];
      for await (const n of stream as unknown as AsyncIterable<number>) seen.push(n);
      expect(seen).toEqual([1, 2, 3]);
      // The reader is released: the stream can be read again (it is done).
      expect(stream.locked).toBe(false);
    } finally {
      if (saved) Object.defineProperty(proto, Symbol.asyncIterator, { value: saved, configurable: true, writable: true });
    }
  });
});
