import { describe, expect, it } from 'vitest';
import { addCitationChips, boldParts, markUnsupported, renderMarkdown } from './markdown';

function html(md: string): HTMLDivElement {
  const div = document.createElement('div');
  div.innerHTML = renderMarkdown(md);
  return div;
}

describe('renderMarkdown', () => {
  it('makes an img with onerror inert', () => {
    const div = html('before <img src=x onerror=alert(1)> after');
    expect(div.innerHTML).not.toMatch(/onerror/i);
    for (const el of Array.from(div.querySelectorAll('*'))) {
      for (const attr of Array.from(el.attributes)) expect(attr.name.startsWith('on')).toBe(false);
    }
    // A remote (or relative) src is dropped altogether.
    expect(div.querySelector('img')).toBeNull();
    expect(div.textContent).toContain('before');
  });

  it('removes script elements', () => {
    const div = html('hello <script>alert(1)</script>\n\n<script src="x.js"></script>');
    expect(div.querySelector('script')).toBeNull();
    expect(div.innerHTML).not.toMatch(/<script/i);
  });

  it('leaves no javascript: link', () => {
    const div = html('[x](javascript:alert(1)) and <a href="javascript:alert(2)">y</a> and <a href="JaVaScRiPt:alert(3)">z</a>');
    expect(div.innerHTML.toLowerCase()).not.toContain('javascript:');
    for (const a of Array.from(div.querySelectorAll('a'))) expect(a.getAttribute('href') ?? '').not.toMatch(/javascript/i);
  });

  it('makes external links inert but keeps in-page anchors', () => {
    const div = html('[site](https://example.org/page) and [here](#part)');
    const links = Array.from(div.querySelectorAll('a'));
    expect(links).toHaveLength(2);
    expect(links[0].hasAttribute('href')).toBe(false);
    expect(links[0].getAttribute('title')).toBe('https://example.org/page');
    expect(links[1].getAttribute('href')).toBe('#part');
  });

  it('keeps data: images, drops remote ones', () => {
    const div = html('![a](data:image/png;base64,iVBORw0KGgo=) ![b](https://example.org/t.png)');
    const imgs = Array.from(div.querySelectorAll('img'));
    expect(imgs).toHaveLength(1);
    expect(imgs[0].getAttribute('src')).toMatch(/^data:image\/png/);
    expect(div.textContent).toContain('b');
  });

  it('drops ids, classes, styles, forms and iframes', () => {
    const div = html('<div id="send" class="citation" style="color:red">x</div><form><input></form><iframe src="a"></iframe><svg><script>1</script></svg>');
    expect(div.querySelector('#send')).toBeNull();
    expect(div.querySelector('.citation')).toBeNull();
    expect(div.querySelector('[style]')).toBeNull();
    expect(div.querySelector('form, input, iframe, svg')).toBeNull();
  });

  it('keeps ordinary Markdown: lists, bold, code', () => {
    const div = html('Some **bold** text.\n\n- one\n- two\n\n1. first\n\n`inline` and\n\n```\nblock code\n```\n\n> quote');
    expect(div.querySelector('strong')?.textContent).toBe('bold');
    expect(div.querySelectorAll('ul li')).toHaveLength(2);
    expect(div.querySelectorAll('ol li')).toHaveLength(1);
    expect(div.querySelector('p code')?.textContent).toBe('inline');
    expect(div.querySelector('pre code')?.textContent).toContain('block code');
    expect(div.querySelector('blockquote')).not.toBeNull();
  });
});

describe('citation chips', () => {
  const valid = new Set([1, 2, 3]);
  const isValid = (n: number) => valid.has(n);

  it('turns [1] and [1, 2] into buttons with data-n', () => {
    const div = html('Alpha is true [1]. Beta too [1, 2].');
    const made = addCitationChips(div, isValid);
    const chips = Array.from(div.querySelectorAll('button.citation')) as HTMLButtonElement[];
    expect(made).toBe(3);
    expect(chips.map((c) => c.dataset.n)).toEqual(['1', '1', '2']);
    expect(div.textContent).not.toContain('[1]');
    expect(chips[0].getAttribute('aria-label')).toBe('Source 1');
  });

  it('leaves a number that is not a citation as text', () => {
    const div = html('Gamma [9]. Delta [2, 9].');
    addCitationChips(div, isValid);
    const chips = Array.from(div.querySelectorAll('button.citation')) as HTMLButtonElement[];
    expect(chips.map((c) => c.dataset.n)).toEqual(['2']);
    expect(div.textContent).toContain('[9]');
  });

  it('does not touch code', () => {
    const div = html('`arr[1]` and [1]');
    addCitationChips(div, isValid);
    expect(div.querySelector('code')?.textContent).toBe('arr[1]');
    expect(div.querySelectorAll('button.citation')).toHaveLength(1);
  });

  it('never interprets text as HTML', () => {
    const div = document.createElement('div');
    div.textContent = '<img src=x onerror=alert(1)> [1]';
    addCitationChips(div, isValid);
    expect(div.querySelector('img')).toBeNull();
    expect(div.querySelectorAll('button.citation')).toHaveLength(1);
  });
});

describe('markUnsupported', () => {
  it('wraps a listed sentence, also across bold', () => {
    const md = 'The sky is blue [1]. The moon is **made of** cheese. Water is wet [2].';
    const div = html(md);
    const n = markUnsupported(div, ['The moon is **made of** cheese.']);
    expect(n).toBe(1);
    const marked = Array.from(div.querySelectorAll('.unsupported'));
    expect(marked.length).toBeGreaterThanOrEqual(2);
    expect(marked.map((m) => m.textContent).join('')).toBe('The moon is made of cheese.');
    expect(marked.every((m) => m.getAttribute('title') === 'Not supported by the sources')).toBe(true);
    // Chips still work inside and around the marks.
    addCitationChips(div, (k) => k <= 2);
    expect(div.querySelectorAll('button.citation')).toHaveLength(2);
  });

  it('ignores sentences that are not there', () => {
    const div = html('Only this.');
    expect(markUnsupported(div, ['Something else.'])).toBe(0);
    expect(div.querySelector('.unsupported')).toBeNull();
  });
});

describe('boldParts', () => {
  it('splits **bold** matches', () => {
    expect(boldParts('a **b** c')).toEqual([
      { text: 'a ', bold: false },
      { text: 'b', bold: true },
      { text: ' c', bold: false },
    ]);
  });
});
