import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import * as ipc from '../ipc';
import type { DocumentText } from '../ipc';
import { splitBySpan } from '../highlight';
import { ErrorNote } from './common';
import type { ViewTarget } from './types';

/** A document at a page, with the cited passage highlighted. */
export function Viewer({ target, onClose }: { target: ViewTarget; onClose: () => void }) {
  const [doc, setDoc] = useState<DocumentText | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [page, setPage] = useState(target.page);
  const rootRef = useRef<HTMLElement>(null);

  useEffect(() => {
    let cancelled = false;
    setError(null);
    setPage(target.page);
    if (doc?.id !== target.docId) setDoc(null);
    ipc
      .readDocument(target.docId)
      .then((d) => !cancelled && setDoc(d))
      .catch((e) => !cancelled && setError(e));
    return () => {
      cancelled = true;
    };
    // A new target (even the same document) re-opens at its page.
  }, [target]);

  const pageCount = doc ? Math.max(doc.pages.length, 1) : 0;
  const pageText = doc?.pages.find((p) => p.number === page)?.text ?? doc?.pages[page - 1]?.text ?? '';
  const onTargetPage = page === target.page;
  // The highlight: the span on the target page; a PDF searches for the quote (or the span's text).
  const quote = onTargetPage ? (target.quote ?? (target.span ? splitBySpan(pageText, target.span).mark : null)) : null;

  function go(delta: number) {
    setPage((p) => Math.min(Math.max(1, p + delta), pageCount || 1));
  }

  function onKeyDown(e: KeyboardEvent) {
    const tag = (e.target as HTMLElement).tagName;
    if (tag === 'INPUT' || tag === 'TEXTAREA') return;
    if (e.key === 'ArrowRight' || e.key === 'PageDown') go(1);
    else if (e.key === 'ArrowLeft' || e.key === 'PageUp') go(-1);
    else if (e.key === 'Escape') onClose();
    else return;
    e.preventDefault();
  }

  return (
    <section
      id="viewer"
      class="viewer"
      ref={rootRef}
      data-page={String(page)}
      data-doc={target.docId}
      aria-label={`Viewer: ${doc?.title ?? target.title ?? 'document'}`}
      tabIndex={-1}
      onKeyDown={onKeyDown}
    >
      <header class="viewer-bar">
        <h2 class="viewer-title" title={doc?.path}>
          {doc?.title ?? target.title ?? 'Document'}
        </h2>
        <nav class="pager" aria-label="Pages">
          <button type="button" class="icon" id="viewer-prev" aria-label="Previous page" disabled={page <= 1} onClick={() => go(-1)}>
            ‹
          </button>
          <span class="page-label" aria-live="polite">
            page {page} of {pageCount || '…'}
          </span>
          <button
            type="button"
            class="icon"
            id="viewer-next"
            aria-label="Next page"
            disabled={!doc || page >= pageCount}
            onClick={() => go(1)}
          >
            ›
          </button>
        </nav>
        <button type="button" class="icon" id="viewer-close" aria-label="Close the viewer" onClick={onClose}>
          ×
        </button>
      </header>
      <ErrorNote error={error} />
      <div class="viewer-body">
        {doc && doc.kind === 'pdf' ? (
          <PdfPage docId={doc.id} page={page} quote={quote} />
        ) : doc ? (
          <TextPage text={pageText} span={onTargetPage ? target.span : null} />
        ) : (
          !error && <p class="muted">Opening…</p>
        )}
      </div>
    </section>
  );
}

/** A page of a note or text file, with the code-point span wrapped in <mark class="highlight">. */
export function TextPage({ text, span }: { text: string; span?: [number, number] | null }) {
  const { before, mark, after } = splitBySpan(text, span);
  const markRef = useRef<HTMLElement>(null);
  useLayoutEffect(() => {
    markRef.current?.scrollIntoView?.({ block: 'center', inline: 'nearest' });
  }, [text, span?.[0], span?.[1]]);
  return (
    <div class="text-page">
      {before}
      {mark && (
        <mark class="highlight" ref={markRef}>
          {mark}
        </mark>
      )}
      {after}
    </div>
  );
}

/** A PDF page drawn by pdf.js (loaded on first use), with a text layer for the highlight. */
function PdfPage({ docId, page, quote }: { docId: string; page: number; quote: string | null }) {
  const hostRef = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(null);
  const [state, setState] = useState<'loading' | 'shown' | 'no-match'>('loading');

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let cancelled = false;
    setError(null);
    setState('loading');
    (async () => {
      const pdf = await import('../pdf');
      const doc = await pdf.openPdf(docId);
      if (cancelled) return;
      const result = await pdf.renderPage(doc, page, host, quote, () => cancelled);
      if (!cancelled) setState(result.highlighted || !quote ? 'shown' : 'no-match');
    })().catch((e) => !cancelled && setError(e));
    return () => {
      cancelled = true;
    };
  }, [docId, page, quote]);

  return (
    <div class="pdf-page-wrap" data-state={state}>
      <ErrorNote error={error} />
      {state === 'no-match' && <p class="muted small">The passage could not be located exactly on this page.</p>}
      <div class="pdf-page" ref={hostRef} />
    </div>
  );
}
