// pdf.js, loaded only when a PDF is first opened (dynamic import from the viewer), so the
// first screen stays small. The legacy build runs on older system webviews (WebKitGTK).
// Everything comes from the npm package: the worker is bundled as a file of our own origin,
// eval is off, and nothing is fetched (no cMaps, standard fonts or wasm decoders: the CSP's
// connect-src allows only IPC, so those are left out and pdf.js falls back to system fonts).
import { installReadableStreamIterator } from './streams';
import * as pdfjs from 'pdfjs-dist/legacy/build/pdf.mjs';
import workerUrl from 'pdfjs-dist/legacy/build/pdf.worker.min.mjs?url';
import * as ipc from './ipc';
import { highlightInSpans } from './highlight';

installReadableStreamIterator();
pdfjs.GlobalWorkerOptions.workerSrc = workerUrl;

type PdfDoc = Awaited<ReturnType<typeof pdfjs.getDocument>['promise']>;

const cache = new Map<string, Promise<PdfDoc>>();
const CACHE_SIZE = 3;

/** Opens a PDF of the library from its bytes (kept open for the last few documents). */
export function openPdf(docId: string): Promise<PdfDoc> {
  let doc = cache.get(docId);
  if (!doc) {
    doc = ipc.documentBytes(docId).then(
      (data) =>
        pdfjs.getDocument({
          data,
          isEvalSupported: false,
          useWorkerFetch: false,
          useWasm: false,
          useSystemFonts: true,
          enableXfa: false,
          stopAtErrors: false,
        }).promise,
    );
    cache.set(docId, doc);
    doc.catch(() => cache.delete(docId));
    while (cache.size > CACHE_SIZE) {
      const oldest = cache.keys().next().value as string;
      const old = cache.get(oldest);
      cache.delete(oldest);
      void old?.then((d) => d.destroy()).catch(() => {});
    }
  }
  return doc;
}

/** Draws `pageNumber` into `host` (canvas + text layer) and highlights `quote` in the text layer. */
export async function renderPage(
  doc: PdfDoc,
  pageNumber: number,
  host: HTMLElement,
  quote: string | null,
  cancelled: () => boolean,
): Promise<{ highlighted: boolean }> {
  const page = await doc.getPage(Math.min(Math.max(1, pageNumber), doc.numPages));
  if (cancelled()) return { highlighted: false };
  const base = page.getViewport({ scale: 1 });
  const width = host.clientWidth || 720;
  const scale = Math.min(3, Math.max(0.5, width / base.width));
  const viewport = page.getViewport({ scale });
  const dpr = window.devicePixelRatio || 1;

  const wrap = document.createElement('div');
  wrap.className = 'pdf-canvas-wrap';
  wrap.style.width = `${Math.floor(viewport.width)}px`;
  wrap.style.height = `${Math.floor(viewport.height)}px`;
  wrap.style.setProperty('--scale-factor', String(scale));
  wrap.style.setProperty('--total-scale-factor', String(scale));
  wrap.style.setProperty('--user-unit', '1');
  wrap.style.setProperty('--scale-round-x', '1px');
  wrap.style.setProperty('--scale-round-y', '1px');

  const canvas = document.createElement('canvas');
  canvas.width = Math.floor(viewport.width * dpr);
  canvas.height = Math.floor(viewport.height * dpr);
  canvas.style.width = `${Math.floor(viewport.width)}px`;
  canvas.style.height = `${Math.floor(viewport.height)}px`;
  canvas.setAttribute('aria-hidden', 'true');
  const textDiv = document.createElement('div');
  textDiv.className = 'textLayer';
  wrap.append(canvas, textDiv);

  await page.render({ canvas, viewport, transform: dpr !== 1 ? [dpr, 0, 0, dpr, 0, 0] : undefined }).promise;
  if (cancelled()) return { highlighted: false };
  const textLayer = new pdfjs.TextLayer({ textContentSource: await page.getTextContent(), container: textDiv, viewport });
  await textLayer.render();
  if (cancelled()) return { highlighted: false };

  host.replaceChildren(wrap);
  const hit = quote ? highlightInSpans(textLayer.textDivs, quote) : [];
  hit[0]?.scrollIntoView({ block: 'center', inline: 'nearest' });
  return { highlighted: hit.length > 0 };
}
