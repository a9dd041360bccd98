import { useLayoutEffect, useRef } from 'preact/hooks';
import { addCitationChips, markUnsupported, renderMarkdown } from '../markdown';

/**
 * A finished answer: sanitized Markdown, then unsupported sentences marked and citation
 * chips added on the DOM. Clicking a chip calls `onCite(n)`.
 */
export function AnswerBody(props: {
  text: string;
  /** The citation numbers that exist for this answer. */
  citations: number[];
  unsupported?: string[];
  label?: (n: number) => string;
  /** The page each citation points at (set as data-page on its chip). */
  page?: (n: number) => number | undefined;
  onCite: (n: number) => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const citeKey = props.citations.join(',');
  const unsupportedKey = JSON.stringify(props.unsupported ?? []);
  const labelRef = useRef(props.label);
  labelRef.current = props.label;
  const pageRef = useRef(props.page);
  pageRef.current = props.page;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.innerHTML = renderMarkdown(props.text);
    const valid = new Set(props.citations);
    markUnsupported(el, props.unsupported ?? []);
    addCitationChips(
      el,
      (n) => valid.has(n),
      (n) => labelRef.current?.(n) ?? `Source ${n}`,
      (n): Record<string, string> => {
        const page = pageRef.current?.(n);
        return page == null ? {} : { page: String(page) };
      },
    );
  }, [props.text, citeKey, unsupportedKey]);

  return (
    <div
      ref={ref}
      class="answer-body markdown"
      onClick={(e) => {
        const chip = (e.target as Element | null)?.closest?.('button.citation') as HTMLButtonElement | null;
        if (chip?.dataset.n) props.onCite(Number(chip.dataset.n));
      }}
    />
  );
}
