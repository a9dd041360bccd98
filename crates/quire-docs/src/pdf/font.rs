//! What a PDF font needs for text extraction: character code → Unicode text, and each
//! code's advance width (so glyphs get positions and gaps become spaces).
//!
//! Priority for Unicode follows the spec and what poppler does: the font's `/ToUnicode`
//! CMap first, then its `/Encoding` (base encoding plus `/Differences`, glyph names mapped
//! through the Adobe Glyph List that lopdf carries), then the standard encoding.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Encoding, Object};

/// Bytes a ToUnicode CMap or font program may decompress to.
const MAX_FONT_STREAM: usize = 16 * 1024 * 1024;

pub(crate) struct Font {
    /// Composite (Type0) fonts use two-byte codes.
    two_byte: bool,
    /// For simple fonts: the text of each one-byte code.
    simple: Vec<String>,
    /// ToUnicode entries looked up lazily for composite fonts (code → text).
    to_unicode: Option<Encoding<'static>>,
    cache: std::cell::RefCell<HashMap<u32, String>>,
    widths: Widths,
    /// Glyph space → text space (0.001 except for Type3 fonts).
    pub(crate) scale: f32,
    /// Vertical extent factor for layout (1 except for Type3 fonts with odd matrices).
    pub(crate) height: f32,
}

enum Widths {
    Simple {
        first: u32,
        widths: Vec<f32>,
        missing: f32,
    },
    Composite {
        default: f32,
        ranges: Vec<(u32, u32, f32)>,
        single: HashMap<u32, f32>,
    },
}

fn num(o: &Object, doc: &Document) -> Option<f32> {
    match deref(o, doc)? {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

pub(crate) fn deref<'a>(o: &'a Object, doc: &'a Document) -> Option<&'a Object> {
    doc.dereference(o).ok().map(|(_, o)| o)
}

fn dict_get<'a>(d: &'a Dictionary, key: &[u8], doc: &'a Document) -> Option<&'a Object> {
    d.get(key).ok().and_then(|o| deref(o, doc))
}

fn array<'a>(d: &'a Dictionary, key: &[u8], doc: &'a Document) -> Option<&'a Vec<Object>> {
    dict_get(d, key, doc).and_then(|o| o.as_array().ok())
}

/// Text for a glyph name that the glyph list does not know: `uniXXXX`, `uXXXX`,
/// ligature names like `f_f_i`, and the common ligatures.
fn glyph_name_fallback(name: &str) -> Option<String> {
    match name {
        "ff" => return Some("ff".into()),
        "fi" => return Some("fi".into()),
        "fl" => return Some("fl".into()),
        "ffi" => return Some("ffi".into()),
        "ffl" => return Some("ffl".into()),
        _ => {}
    }
    let base = name.split('.').next().unwrap_or(name);
    if base.contains('_') {
        let parts: Option<String> = base.split('_').map(glyph_name_fallback_or_single).collect();
        return parts;
    }
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .and_then(char::from_u32)
            .map(String::from)
    };
    if let Some(h) = base.strip_prefix("uni") {
        if h.len() >= 4 && h.len() % 4 == 0 {
            return h
                .as_bytes()
                .chunks(4)
                .map(|c| hex(std::str::from_utf8(c).unwrap_or("")))
                .collect();
        }
    }
    if let Some(h) = base.strip_prefix('u') {
        if (4..=6).contains(&h.len()) {
            return hex(h);
        }
    }
    None
}

fn glyph_name_fallback_or_single(part: &str) -> Option<String> {
    if part.chars().count() == 1 && part.is_ascii() {
        return Some(part.to_string());
    }
    glyph_name_fallback(part)
}

/// Text of one glyph name through lopdf's glyph list, by decoding a one-entry
/// `/Differences` encoding.
fn glyph_name_text(name: &[u8], doc: &Document) -> Option<String> {
    let s = String::from_utf8_lossy(name);
    if let Some(t) = glyph_name_fallback(&s) {
        return Some(t);
    }
    let mut enc = Dictionary::new();
    enc.set(
        "Differences",
        vec![Object::Integer(65), Object::Name(name.to_vec())],
    );
    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Encoding", Object::Dictionary(enc));
    let encoding = font.get_font_encoding(doc).ok()?;
    if !matches!(encoding, Encoding::Differences(_)) {
        return None; // the name was unknown and lopdf fell back
    }
    encoding
        .bytes_to_string(&[65])
        .ok()
        .filter(|t| !t.is_empty())
}

/// The 256 texts of a named base encoding.
fn base_table(name: &[u8], doc: &Document) -> Vec<String> {
    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Encoding", Object::Name(name.to_vec()));
    let enc = font.get_font_encoding(doc).ok();
    (0..=255u8)
        .map(|b| {
            enc.as_ref()
                .and_then(|e| e.bytes_to_string(&[b]).ok())
                .unwrap_or_default()
        })
        .collect()
}

/// The ToUnicode CMap of a font, if it has a usable one.
fn to_unicode(font: &Dictionary, doc: &Document) -> Option<Encoding<'static>> {
    let stream = dict_get(font, b"ToUnicode", doc)?.as_stream().ok()?;
    let mut only = Dictionary::new();
    only.set("Type", Object::Name(b"Font".to_vec()));
    // lopdf's encoding lookup reads `/ToUnicode` when there is no `/Encoding`; give it a
    // dictionary with the stream inline so the result borrows nothing from the document.
    only.set("ToUnicode", Object::Stream(stream.clone()));
    let enc = only
        .get_font_encoding_with_limit(doc, MAX_FONT_STREAM)
        .ok()?;
    match enc {
        Encoding::UnicodeMapEncoding(map) => Some(Encoding::UnicodeMapEncoding(map)),
        _ => None,
    }
}

fn unicode_of(enc: &Encoding<'static>, code: u32, len: u8) -> Option<String> {
    let Encoding::UnicodeMapEncoding(map) = enc else {
        return None;
    };
    let units = map.get(code, len)?;
    let s = String::from_utf16_lossy(&units);
    (!s.is_empty() && s != "\u{fffd}").then_some(s)
}

impl Font {
    pub(crate) fn load(font: &Dictionary, doc: &Document) -> Font {
        let subtype = font
            .get(b"Subtype")
            .and_then(|o| o.as_name())
            .unwrap_or(b"");
        let two_byte = subtype == b"Type0";
        let tu = to_unicode(font, doc);
        let (scale, height) = if subtype == b"Type3" {
            let m: Vec<f32> = array(font, b"FontMatrix", doc)
                .map(|a| a.iter().filter_map(|o| num(o, doc)).collect())
                .unwrap_or_default();
            if m.len() == 6 && m[0] != 0.0 {
                (m[0].abs(), (m[3].abs() * 1000.0).clamp(0.05, 20.0))
            } else {
                (0.001, 1.0)
            }
        } else {
            (0.001, 1.0)
        };

        let simple = if two_byte {
            Vec::new()
        } else {
            let mut table = match dict_get(font, b"Encoding", doc) {
                Some(Object::Name(n)) => base_table(n, doc),
                Some(Object::Dictionary(d)) => {
                    let base = d
                        .get(b"BaseEncoding")
                        .and_then(|o| o.as_name())
                        .unwrap_or(b"StandardEncoding");
                    let mut t = base_table(base, doc);
                    if let Some(diffs) = array(d, b"Differences", doc) {
                        let mut code = 0usize;
                        for o in diffs {
                            match deref(o, doc) {
                                Some(Object::Integer(i)) => code = (*i).clamp(0, 255) as usize,
                                Some(Object::Name(n)) => {
                                    if code < 256 {
                                        t[code] = glyph_name_text(n, doc).unwrap_or_default();
                                    }
                                    code += 1;
                                }
                                _ => {}
                            }
                        }
                    }
                    t
                }
                _ => base_table(b"StandardEncoding", doc),
            };
            if let Some(tu) = &tu {
                for (code, slot) in table.iter_mut().enumerate() {
                    if let Some(t) = unicode_of(tu, code as u32, 1) {
                        *slot = t;
                    }
                }
            }
            table
        };

        let widths = if two_byte {
            let desc = array(font, b"DescendantFonts", doc)
                .and_then(|a| a.first())
                .and_then(|o| deref(o, doc))
                .and_then(|o| o.as_dict().ok());
            let default = desc
                .and_then(|d| dict_get(d, b"DW", doc))
                .and_then(|o| num(o, doc))
                .unwrap_or(1000.0);
            let mut ranges = Vec::new();
            let mut single = HashMap::new();
            if let Some(w) = desc.and_then(|d| array(d, b"W", doc)) {
                let mut i = 0;
                while i < w.len() {
                    let Some(first) = num(&w[i], doc) else { break };
                    let first = first as u32;
                    match w.get(i + 1).and_then(|o| deref(o, doc)) {
                        Some(Object::Array(list)) => {
                            for (k, o) in list.iter().enumerate().take(65536) {
                                if let Some(v) = num(o, doc) {
                                    single.insert(first + k as u32, v);
                                }
                            }
                            i += 2;
                        }
                        Some(o) => {
                            let last = num(o, doc).unwrap_or(first as f32) as u32;
                            let v = w.get(i + 2).and_then(|o| num(o, doc)).unwrap_or(default);
                            ranges.push((first, last, v));
                            i += 3;
                        }
                        None => break,
                    }
                }
            }
            Widths::Composite {
                default,
                ranges,
                single,
            }
        } else {
            let first = dict_get(font, b"FirstChar", doc)
                .and_then(|o| num(o, doc))
                .unwrap_or(0.0) as u32;
            let widths: Vec<f32> = array(font, b"Widths", doc)
                .map(|a| a.iter().map(|o| num(o, doc).unwrap_or(0.0)).collect())
                .unwrap_or_default();
            let missing = dict_get(font, b"FontDescriptor", doc)
                .and_then(|o| o.as_dict().ok())
                .and_then(|d| dict_get(d, b"MissingWidth", doc))
                .and_then(|o| num(o, doc))
                .filter(|w| *w > 0.0)
                // Standard 14 fonts carry no widths: half an em is a fair average.
                .unwrap_or(if subtype == b"Type3" { 0.0 } else { 500.0 });
            Widths::Simple {
                first,
                widths,
                missing,
            }
        };

        Font {
            two_byte,
            simple,
            to_unicode: if two_byte { tu } else { None },
            cache: Default::default(),
            widths,
            scale,
            height,
        }
    }

    /// A font we know nothing about (a missing resource): one-byte, standard encoding.
    pub(crate) fn fallback(doc: &Document) -> Font {
        Font {
            two_byte: false,
            simple: base_table(b"StandardEncoding", doc),
            to_unicode: None,
            cache: Default::default(),
            widths: Widths::Simple {
                first: 0,
                widths: Vec::new(),
                missing: 500.0,
            },
            scale: 0.001,
            height: 1.0,
        }
    }

    /// Splits a string operand into character codes: `(code, byte length)`.
    pub(crate) fn codes<'a>(&self, bytes: &'a [u8]) -> impl Iterator<Item = (u32, u8)> + 'a {
        let step = if self.two_byte { 2 } else { 1 };
        bytes.chunks(step).map(move |c| {
            let code = c.iter().fold(0u32, |a, b| (a << 8) | *b as u32);
            (code, c.len() as u8)
        })
    }

    /// Appends the text of `code` to `out`.
    pub(crate) fn text(&self, code: u32, len: u8, out: &mut String) {
        if !self.two_byte {
            if let Some(t) = self.simple.get(code as usize) {
                out.push_str(t);
            }
            return;
        }
        if let Some(t) = self.cache.borrow().get(&code) {
            out.push_str(t);
            return;
        }
        let t = self
            .to_unicode
            .as_ref()
            .and_then(|tu| unicode_of(tu, code, len))
            .unwrap_or_default();
        out.push_str(&t);
        self.cache.borrow_mut().insert(code, t);
    }

    /// Advance width of `code` in glyph space units.
    pub(crate) fn width(&self, code: u32) -> f32 {
        match &self.widths {
            Widths::Simple {
                first,
                widths,
                missing,
            } => code
                .checked_sub(*first)
                .and_then(|i| widths.get(i as usize))
                .copied()
                .filter(|w| *w > 0.0)
                .unwrap_or(*missing),
            Widths::Composite {
                default,
                ranges,
                single,
            } => single.get(&code).copied().unwrap_or_else(|| {
                ranges
                    .iter()
                    .find(|(a, b, _)| (*a..=*b).contains(&code))
                    .map(|r| r.2)
                    .unwrap_or(*default)
            }),
        }
    }

    /// Whether word spacing applies (a one-byte code 32).
    pub(crate) fn is_word_space(&self, code: u32, len: u8) -> bool {
        len == 1 && code == 32
    }
}
