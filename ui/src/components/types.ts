/** Where the viewer should open: a document, a page, and what to highlight there. */
export interface ViewTarget {
  docId: string;
  page: number;
  /** Character span on the page (Unicode code points), for notes and text. */
  span?: [number, number] | null;
  /** Text to find on the page (PDFs); derived from the span when missing. */
  quote?: string | null;
  title?: string;
}

export type View = 'chat' | 'library' | 'notes' | 'settings';
