// Sanitized Markdown: the only way model output, document text and note bodies become HTML.
// marked turns Markdown into HTML, DOMPurify removes anything active (scripts, event handlers,
// javascript: URLs, forms, frames, SVG/MathML), and a final pass makes remaining links inert
// and drops images that would load anything (only data: and blob: images stay).
// Citation chips and unsupported-sentence marks are added afterwards on the DOM, by walking
// text nodes: never by concatenating HTML from untrusted text.
import { Marked } from 'marked';
import DOMPurify, { type Config } from 'dompurify';

const marked = new Marked({ gfm: true, breaks: false, async: false });

let purifier: ReturnType<typeof DOMPurify> | null = null;
function purify(): ReturnType<typeof DOMPurify> {
  // One instance of our own (hooks or settings elsewhere cannot leak in), made lazily so
  // that importing this module never touches `window` before there is one.
  if (!purifier) purifier = DOMPurify(window);
  return purifier;
}

const PURIFY_CONFIG: Config & { RETURN_DOM_FRAGMENT: true } = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe', 'frame', 'object', 'embed', 'link', 'meta', 'base', 'video', 'audio', 'source', 'track', 'picture'],
  // ids and classes would let text pose as the app's own elements (#send, .citation, …).
  FORBID_ATTR: ['style', 'id', 'name', 'class', 'srcset', 'action', 'formaction', 'target', 'ping', 'background', 'poster'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

const SAFE_IMG = /^(data:image\/(png|gif|jpe?g|webp|bmp);|blob:)/i;

/** Markdown → sanitized HTML string (safe to assign to innerHTML). */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text ?? '') as string;
  const fragment = purify().sanitize(html, PURIFY_CONFIG);
  for (const img of Array.from(fragment.querySelectorAll('img'))) {
    const src = img.getAttribute('src') ?? '';
    if (!SAFE_IMG.test(src.trim())) {
      const alt = img.getAttribute('alt');
      if (alt) img.replaceWith(document.createTextNode(alt));
      else img.remove();
    }
  }
  for (const a of Array.from(fragment.querySelectorAll('a'))) {
    const href = a.getAttribute('href');
    if (href !== null && !href.startsWith('#')) {
      a.removeAttribute('href');
      // Show where it pointed, but it cannot be followed from inside Quire.
      if (/^(https?|mailto|file):/i.test(href.trim())) a.setAttribute('title', href);
    }
    a.removeAttribute('rel');
  }
  const holder = document.createElement('div');
  holder.appendChild(fragment);
  return holder.innerHTML;
}

const SKIP_PARENTS = new Set(['CODE', 'PRE', 'A', 'BUTTON', 'SCRIPT', 'STYLE', 'TEXTAREA']);

function textNodes(root: Node): Text[] {
  const doc = root.ownerDocument ?? document;
  const walker = doc.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const out: Text[] = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) out.push(n as Text);
  return out;
}

function insideSkipped(node: Node, root: Node): boolean {
  for (let p = node.parentNode; p && p !== root; p = p.parentNode) {
    if (SKIP_PARENTS.has(p.nodeName)) return true;
  }
  return false;
}

const CITATION_GROUP = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

/**
 * Replaces citation markers `[n]` and `[n, m]` in the text under `root` with
 * `<button class="citation" data-n="n">` chips. Numbers for which `isValid(n)` is false stay
 * plain text. `label(n)` gives the chip's accessible label; `data(n)` extra data-* values
 * (e.g. the cited page).
 */
export function addCitationChips(
  root: HTMLElement,
  isValid: (n: number) => boolean,
  label: (n: number) => string = (n) => `Source ${n}`,
  data: (n: number) => Record<string, string> = () => ({}),
): number {
  const doc = root.ownerDocument;
  let made = 0;
  for (const node of textNodes(root)) {
    if (insideSkipped(node, root)) continue;
    const text = node.data;
    CITATION_GROUP.lastIndex = 0;
    if (!CITATION_GROUP.test(text)) continue;
    CITATION_GROUP.lastIndex = 0;
    const frag = doc.createDocumentFragment();
    let last = 0;
    let changed = false;
    for (let m = CITATION_GROUP.exec(text); m; m = CITATION_GROUP.exec(text)) {
      const ns = m[1].split(',').map((s) => Number(s.trim()));
      if (!ns.some(isValid)) continue;
      changed = true;
      if (m.index > last) frag.appendChild(doc.createTextNode(text.slice(last, m.index)));
      const group = doc.createElement('span');
      group.className = 'citations';
      ns.forEach((n, i) => {
        if (i > 0) group.appendChild(doc.createTextNode(' '));
        if (isValid(n)) {
          const b = doc.createElement('button');
          b.type = 'button';
          b.className = 'citation';
          for (const [k, v] of Object.entries(data(n))) b.dataset[k] = v;
          b.dataset.n = String(n);
          b.textContent = String(n);
          b.setAttribute('aria-label', label(n));
          b.title = label(n);
          group.appendChild(b);
          made++;
        } else {
          group.appendChild(doc.createTextNode(`[${n}]`));
        }
      });
      frag.appendChild(group);
      last = m.index + m[0].length;
    }
    if (!changed) continue;
    if (last < text.length) frag.appendChild(doc.createTextNode(text.slice(last)));
    node.replaceWith(frag);
  }
  return made;
}

// Markdown syntax that disappears when rendered; ignored when matching a raw sentence.
const MARKUP = /[*_`~]/;

/** Text of `root` with an index back to (text node, offset) for each kept character. Runs of
 * whitespace collapse to one space; Markdown markup characters are dropped. */
function flatten(nodes: Text[]): { flat: string; at: { node: Text; offset: number }[] } {
  let flat = '';
  const at: { node: Text; offset: number }[] = [];
  let lastSpace = true;
  for (const node of nodes) {
    const d = node.data;
    for (let i = 0; i < d.length; i++) {
      const c = d[i];
      if (/\s/.test(c)) {
        if (lastSpace) continue;
        flat += ' ';
        lastSpace = true;
      } else if (MARKUP.test(c)) {
        continue;
      } else {
        flat += c.toLowerCase();
        lastSpace = false;
      }
      at.push({ node, offset: i });
    }
  }
  return { flat, at };
}

function normalizeSentence(s: string): string {
  return s
    .split('')
    .filter((c) => !MARKUP.test(c))
    .join('')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * Wraps each sentence listed in `sentences` (as it appears in the answer's Markdown) in
 * `<span class="unsupported" title="Not supported by the sources">`. A sentence spread over
 * several text nodes (bold inside it, say) gets one span per piece. Returns how many
 * sentences were found.
 */
export function markUnsupported(root: HTMLElement, sentences: string[], title = 'Not supported by the sources'): number {
  const doc = root.ownerDocument;
  let found = 0;
  for (const sentence of sentences) {
    const want = normalizeSentence(sentence);
    if (!want) continue;
    const nodes = textNodes(root);
    const { flat, at } = flatten(nodes);
    const idx = flat.indexOf(want);
    if (idx < 0) continue;
    found++;
    const start = at[idx];
    const end = at[idx + want.length - 1];
    // Pieces per text node, from start to end inclusive.
    const pieces: { node: Text; from: number; to: number }[] = [];
    let inRange = false;
    for (const node of nodes) {
      if (node === start.node) inRange = true;
      if (!inRange) continue;
      const from = node === start.node ? start.offset : 0;
      const to = node === end.node ? end.offset + 1 : node.data.length;
      if (to > from) pieces.push({ node, from, to });
      if (node === end.node) break;
    }
    for (const { node, from, to } of pieces) {
      let target = node;
      if (from > 0) target = target.splitText(from);
      if (to - from < target.data.length) target.splitText(to - from);
      if (!target.data.trim()) continue;
      const span = doc.createElement('span');
      span.className = 'unsupported';
      span.title = title;
      target.replaceWith(span);
      span.appendChild(target);
    }
  }
  return found;
}

/** Splits text with `**bold**` markers (search snippets) into plain and bold parts. */
export function boldParts(snippet: string): { text: string; bold: boolean }[] {
  return snippet.split('**').map((text, i) => ({ text, bold: i % 2 === 1 })).filter((p) => p.text.length > 0);
}
