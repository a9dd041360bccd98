// Finding and marking passages in the viewer.

/** UTF-16 indices of the code-point span [start, end) of `text` (Rust `char` offsets). */
export function codePointSpan(text: string, start: number, end: number): [number, number] {
  let cp = 0;
  let s = -1;
  let e = -1;
  let i = 0;
  while (i <= text.length) {
    if (cp === start && s < 0) s = i;
    if (cp === end) {
      e = i;
      break;
    }
    if (i === text.length) break;
    const code = text.codePointAt(i)!;
    i += code > 0xffff ? 2 : 1;
    cp++;
  }
  if (s < 0) s = text.length;
  if (e < 0) e = text.length;
  return [s, Math.max(s, e)];
}

/** Splits `text` around the code-point span; an empty or out-of-range span gives no mark. */
export function splitBySpan(text: string, span: [number, number] | null | undefined): { before: string; mark: string; after: string } {
  if (!span || span[1] <= span[0]) return { before: text, mark: '', after: '' };
  const [s, e] = codePointSpan(text, span[0], span[1]);
  return { before: text.slice(0, s), mark: text.slice(s, e), after: text.slice(e) };
}

export function normalizeForSearch(s: string): string {
  return s.replace(/\s+/g, ' ').trim().toLowerCase();
}

/** The first `n` words of a quote (the fallback when the whole quote is not found). */
export function firstWords(s: string, n = 8): string {
  return normalizeForSearch(s).split(' ').slice(0, n).join(' ');
}

/**
 * Finds `quote` in the text of `spans` (a pdf.js text layer's spans, in order):
 * whitespace-normalized, case-insensitive; falls back to its first 8 words. Adds
 * class "highlight" to every span that the match touches and returns them.
 */
export function highlightInSpans(spans: HTMLElement[], quote: string): HTMLElement[] {
  let flat = '';
  const owner: number[] = [];
  let lastSpace = true;
  spans.forEach((el, k) => {
    // pdf.js splits lines into separate spans: treat each boundary as whitespace.
    const text = (el.textContent ?? '') + ' ';
    for (const c of text) {
      if (/\s/.test(c)) {
        if (lastSpace) continue;
        flat += ' ';
        lastSpace = true;
      } else {
        flat += c.toLowerCase();
        lastSpace = false;
      }
      for (let j = 0; j < c.length; j++) owner.push(k);
    }
  });
  // `owner` is indexed by UTF-16 position of `flat`; lowercasing can change lengths in rare
  // scripts, so guard the lookups below.
  for (const want of [normalizeForSearch(quote), firstWords(quote)]) {
    if (!want) continue;
    const at = flat.indexOf(want);
    if (at < 0) continue;
    const from = owner[Math.min(at, owner.length - 1)];
    const to = owner[Math.min(at + want.length - 1, owner.length - 1)];
    const hit = spans.slice(from, to + 1);
    for (const el of hit) el.classList.add('highlight');
    return hit;
  }
  return [];
}
