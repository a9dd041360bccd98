//! From positioned glyphs to page text in reading order.
//!
//! 1. Glyphs join into line fragments along a baseline; a gap wider than a fraction of
//!    the font size becomes a space, a wide gap (a column gutter, a table cell) ends the
//!    fragment. Overprinted duplicates (fake bold) are dropped.
//! 2. Fragments are ordered by recursive XY-cut: the page is split at the widest empty
//!    band, vertical gutters preferred, so two-column pages read column by column.
//! 3. Lines are joined with newlines, paragraphs (large vertical gaps) with blank lines,
//!    and a word hyphenated at a line end is rejoined. Ligatures become letters.

use super::interp::{Glyph, PageGlyphs};

/// A gap wider than this many font sizes between glyphs on a line is a space.
const SPACE_GAP: f32 = 0.15;
/// A gap wider than this ends a line fragment.
const FRAGMENT_GAP: f32 = 1.0;
/// Vertical gutters count this many times more than horizontal gaps in XY-cut.
const VERTICAL_BIAS: f32 = 3.0;

#[derive(Debug, Clone)]
struct Fragment {
    x0: f32,
    x1: f32,
    /// Baseline.
    y: f32,
    size: f32,
    text: String,
}

impl Fragment {
    fn top(&self) -> f32 {
        self.y + 0.8 * self.size
    }
    fn bottom(&self) -> f32 {
        self.y - 0.25 * self.size
    }
}

/// Turns one page's glyphs into text and, when `with_headline`, finds its headline (see
/// [`headline`]) in the same layout of the upright text. Text in each direction
/// (upright, or rotated as in landscape tables and side notes) is laid out in its own
/// frame; the direction with the most glyphs comes first.
pub(crate) fn read_page(page: &PageGlyphs, with_headline: bool) -> (String, Option<String>) {
    let mut by_dir: [Vec<&Glyph>; 4] = Default::default();
    for g in &page.glyphs {
        by_dir[g.dir as usize & 3].push(g);
    }
    let mut dirs: Vec<usize> = (0..4).filter(|&d| !by_dir[d].is_empty()).collect();
    dirs.sort_by_key(|&d| std::cmp::Reverse(by_dir[d].len()));
    let mut text = String::new();
    let mut title = None;
    for d in dirs {
        let frags = fragments(&by_dir[d], &page.text);
        let mut order: Vec<usize> = (0..frags.len()).collect();
        xy_cut(&frags, &mut order);
        if with_headline && d == 0 {
            title = headline(&frags, &order);
        }
        let part = join(&frags, &order);
        if !part.is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&part);
        }
    }
    (normalize(&text), title)
}

/// Article-type labels some journals set in front of the title, in its type.
const ARTICLE_LABELS: &[&str] = &[
    "research article",
    "original article",
    "review article",
    "original research",
    "brief report",
    "article",
];

/// Type at least this much larger than the body text's is display type (a title).
const DISPLAY_SIZE: f32 = 1.3;

/// The headline of upright text laid out as `frags` in reading `order`: the first run of
/// lines set in one size of display type that reads like a title (3 to 40 words, no
/// link). The largest sizes are tried first, so a one-word banner ("Diabetologia",
/// "ARTICLE") in bigger type than the title is passed over. `None` with no display type.
fn headline(frags: &[Fragment], order: &[usize]) -> Option<String> {
    // The body size: the median size by characters set in it.
    let mut sizes: Vec<(f32, usize)> = frags
        .iter()
        .map(|f| (f.size, f.text.chars().count()))
        .collect();
    sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: usize = sizes.iter().map(|s| s.1).sum();
    let mut seen = 0;
    let body = sizes.iter().find_map(|&(size, n)| {
        seen += n;
        (seen * 2 >= total).then_some(size)
    })?;
    let mut tiers: Vec<f32> = frags
        .iter()
        .map(|f| f.size)
        .filter(|&size| size >= DISPLAY_SIZE * body)
        .collect();
    tiers.sort_by(|a, b| b.total_cmp(a));
    tiers.dedup_by(|a, b| (*a - *b).abs() < 0.05 * *b);
    tiers.into_iter().take(3).find_map(|tier| {
        let in_tier = |i: &usize| (frags[*i].size - tier).abs() < 0.05 * tier;
        let start = order.iter().position(in_tier)?;
        // Lines joined with a space, except after a hyphen that ends a line ("slow-" and
        // "moving"): in a title that is a compound's own hyphen, kept.
        let mut joined = String::new();
        for &i in order[start..].iter().take_while(|i| in_tier(i)) {
            let line = frags[i].text.trim();
            if !joined.is_empty() && !joined.ends_with(['-', '\u{2010}']) {
                joined.push(' ');
            }
            joined.push_str(line);
        }
        let text = normalize(&joined)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // A journal's article-type label set in the title's type ("Research Article").
        let text = ARTICLE_LABELS
            .iter()
            .find_map(|l| {
                text.get(..l.len())
                    .filter(|head| head.eq_ignore_ascii_case(l))
                    .and_then(|_| text[l.len()..].strip_prefix(' '))
            })
            .map_or_else(|| text.clone(), str::to_string);
        let words = text.split_whitespace().count();
        let lower = text.to_lowercase();
        let link = lower.contains("http") || lower.contains("doi") || lower.contains("www.");
        ((3..=40).contains(&words) && !link).then_some(text)
    })
}

fn fragments(glyphs: &[&Glyph], text: &str) -> Vec<Fragment> {
    let mut out: Vec<Fragment> = Vec::new();
    let mut cur: Option<Fragment> = None;
    let mut last: Option<&Glyph> = None;
    for g in glyphs {
        let t = &text[g.start as usize..g.end as usize];
        let size = g.size.max(0.1);
        if let (Some(f), Some(p)) = (cur.as_mut(), last) {
            let s = f.size.max(size);
            let dy = g.y - p.y;
            let gap = g.x - f.x1;
            // Overprinted duplicate (fake bold, shadows).
            if (g.x - p.x).abs() < 0.1 * s
                && dy.abs() < 0.1 * s
                && t == &text[p.start as usize..p.end as usize]
            {
                continue;
            }
            let same_line = dy.abs() < 0.5 * s && gap > -0.5 * s && gap < FRAGMENT_GAP * s;
            if same_line {
                let blank = t.trim().is_empty();
                if blank {
                    if !f.text.ends_with(' ') {
                        f.text.push(' ');
                    }
                } else {
                    if gap > SPACE_GAP * s && !f.text.ends_with(' ') {
                        f.text.push(' ');
                    }
                    f.text.push_str(t);
                }
                f.x1 = f.x1.max(g.x + g.w);
                // Superscripts and subscripts do not move the fragment's baseline.
                if size > f.size {
                    f.size = size;
                    f.y = g.y;
                }
                last = Some(g);
                continue;
            }
        }
        if let Some(f) = cur.take() {
            push_fragment(&mut out, f);
        }
        let blank = t.trim().is_empty();
        cur = Some(Fragment {
            x0: g.x,
            x1: g.x + g.w,
            y: g.y,
            size,
            text: if blank { String::new() } else { t.to_string() },
        });
        last = Some(g);
    }
    if let Some(f) = cur.take() {
        push_fragment(&mut out, f);
    }
    out
}

fn push_fragment(out: &mut Vec<Fragment>, mut f: Fragment) {
    let trimmed = f.text.trim_end().len();
    f.text.truncate(trimmed);
    if !f.text.trim().is_empty() {
        out.push(f);
    }
}

/// Orders `idx` (indices into `frags`) by recursive XY-cut.
fn xy_cut(frags: &[Fragment], idx: &mut [usize]) {
    if idx.len() <= 1 {
        return;
    }
    let median_size = {
        let mut s: Vec<f32> = idx.iter().map(|&i| frags[i].size).collect();
        s.sort_by(f32::total_cmp);
        s[s.len() / 2]
    };
    // Widest vertical gap (empty x band).
    idx.sort_by(|&a, &b| frags[a].x0.total_cmp(&frags[b].x0));
    let mut best_v: Option<(f32, usize)> = None;
    let mut reach = f32::MIN;
    for k in 0..idx.len() {
        let f = &frags[idx[k]];
        if k > 0 {
            let gap = f.x0 - reach;
            if gap > 0.5 * median_size && best_v.is_none_or(|(g, _)| gap > g) {
                best_v = Some((gap, k));
            }
        }
        reach = reach.max(f.x1);
    }
    let v_split: Option<(f32, Vec<usize>)> = best_v.map(|(g, k)| (g, idx[..k].to_vec()));

    // Widest horizontal gap (empty y band), top to bottom.
    let mut by_y: Vec<usize> = idx.to_vec();
    by_y.sort_by(|&a, &b| frags[b].top().total_cmp(&frags[a].top()));
    let mut best_h: Option<(f32, usize)> = None;
    let mut floor = f32::MAX;
    for k in 0..by_y.len() {
        let f = &frags[by_y[k]];
        if k > 0 {
            let gap = floor - f.top();
            if gap > 0.0 && best_h.is_none_or(|(g, _)| gap > g) {
                best_h = Some((gap, k));
            }
        }
        floor = floor.min(f.bottom());
    }

    let vertical = match (&v_split, best_h) {
        (Some((gv, _)), Some((gh, _))) => gv * VERTICAL_BIAS >= gh,
        (Some(_), None) => true,
        _ => false,
    };
    if vertical {
        let k = best_v.map(|(_, k)| k).unwrap_or(0);
        let (left, right) = idx.split_at_mut(k);
        xy_cut(frags, left);
        xy_cut(frags, right);
    } else if let Some((_, k)) = best_h {
        idx.copy_from_slice(&by_y);
        let (top, bottom) = idx.split_at_mut(k);
        xy_cut(frags, top);
        xy_cut(frags, bottom);
    } else {
        // Overlapping fragments: rows top to bottom, then left to right.
        idx.sort_by(|&a, &b| {
            let (fa, fb) = (&frags[a], &frags[b]);
            if (fa.y - fb.y).abs() < 0.5 * fa.size.min(fb.size) {
                fa.x0.total_cmp(&fb.x0)
            } else {
                fb.y.total_cmp(&fa.y)
            }
        });
    }
}

fn join(frags: &[Fragment], order: &[usize]) -> String {
    let mut out = String::new();
    let mut prev: Option<&Fragment> = None;
    for &i in order {
        let f = &frags[i];
        if let Some(p) = prev {
            let s = p.size.max(f.size);
            let dy = p.y - f.y;
            if dy.abs() < 0.5 * s && f.x0 >= p.x1 - 0.5 * s {
                out.push(' ');
            } else if dy > 0.0 && dy < 1.9 * s && f.x0 < p.x1 {
                // Next line of the same block.
                if dehyphenate(&mut out, &f.text) {
                    out.push_str(&f.text);
                    prev = Some(f);
                    continue;
                }
                out.push('\n');
            } else {
                out.push_str("\n\n");
            }
        }
        out.push_str(&f.text);
        prev = Some(f);
    }
    out
}

/// If `out` ends with a word broken by a hyphen and `next` continues it in lower case,
/// drops the hyphen and returns true (the caller then joins without a newline).
fn dehyphenate(out: &mut String, next: &str) -> bool {
    let mut tail = out.chars().rev();
    let (Some(h), Some(before)) = (tail.next(), tail.next()) else {
        return false;
    };
    let starts_lower = next.chars().next().is_some_and(|c| c.is_lowercase());
    if matches!(h, '-' | '\u{2010}' | '\u{00ad}') && before.is_alphabetic() && starts_lower {
        out.pop();
        return true;
    }
    false
}

/// Ligatures to letters, no-break and odd spaces to spaces, soft hyphens and control
/// characters dropped.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{00a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => {
                out.push(' ')
            }
            '\u{00ad}' | '\u{200b}' | '\u{feff}' => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_text(page: &PageGlyphs) -> String {
        read_page(page, false).0
    }

    fn page(words: &[(f32, f32, &str)]) -> PageGlyphs {
        let sized: Vec<(f32, f32, f32, &str)> =
            words.iter().map(|&(x, y, w)| (x, y, 10.0, w)).collect();
        sized_page(&sized)
    }

    /// Lines `(x, baseline, font size, text)`.
    fn sized_page(words: &[(f32, f32, f32, &str)]) -> PageGlyphs {
        let mut p = PageGlyphs::default();
        for &(x, y, size, w) in words {
            let mut cx = x;
            for ch in w.chars() {
                let start = p.text.len() as u32;
                p.text.push(ch);
                p.glyphs.push(Glyph {
                    x: cx,
                    y,
                    w: size / 2.0,
                    size,
                    dir: 0,
                    start,
                    end: p.text.len() as u32,
                });
                cx += size / 2.0;
            }
        }
        p
    }

    #[test]
    fn two_columns_read_column_by_column() {
        // Left column at x=50, right at x=300, lines interleaved in the content stream.
        let p = page(&[
            (50.0, 700.0, "left one"),
            (300.0, 700.0, "right one"),
            (50.0, 688.0, "left two"),
            (300.0, 688.0, "right two"),
        ]);
        let t = page_text(&p);
        assert_eq!(t, "left one\nleft two\n\nright one\nright two");
    }

    #[test]
    fn hyphenated_line_ends_rejoin_and_ligatures_expand() {
        let p = page(&[(50.0, 700.0, "identi-"), (50.0, 688.0, "\u{fb01}ed")]);
        assert_eq!(page_text(&p), "identified");
        let p = page(&[(50.0, 700.0, "well-"), (50.0, 688.0, "Known")]);
        assert_eq!(page_text(&p), "well-\nKnown");
    }

    #[test]
    fn the_headline_is_the_first_title_like_run_of_display_type() {
        let body = [
            (
                50.0,
                500.0,
                10.0,
                "Body text set in the usual size, line after line,",
            ),
            (
                50.0,
                488.0,
                10.0,
                "and much more of it than of anything larger.",
            ),
            (
                50.0,
                476.0,
                10.0,
                "Abstract: the study found what it found, at length.",
            ),
        ];
        let mut lines = vec![
            // A one-word banner in the biggest type, a label, then the title over two
            // lines, with a compound hyphen at the break, then the authors.
            (50.0, 760.0, 30.0, "Diabetologia"),
            (50.0, 700.0, 18.0, "Research Article A slow-"),
            (50.0, 680.0, 18.0, "moving zone around the gene"),
            (50.0, 650.0, 11.0, "A. Author, B. Author"),
        ];
        lines.extend(body);
        assert_eq!(
            read_page(&sized_page(&lines), true).1.as_deref(),
            Some("A slow-moving zone around the gene")
        );
        // Nothing in display type: no headline (the file name is used instead).
        assert_eq!(read_page(&sized_page(&body), true).1, None);
        // A link in large type is not a title.
        let mut linked = vec![(50.0, 700.0, 18.0, "https://doi.org/10.1000/xyz see this")];
        linked.extend(body);
        assert_eq!(read_page(&sized_page(&linked), true).1, None);
    }

    #[test]
    fn gaps_become_spaces_and_duplicates_vanish() {
        let mut p = page(&[(50.0, 700.0, "ab"), (64.0, 700.0, "cd")]);
        // Overprint "d" at the same spot (fake bold).
        let last = p.glyphs.last().cloned().expect("glyph");
        p.glyphs.push(last);
        assert_eq!(page_text(&p), "ab cd");
    }
}
