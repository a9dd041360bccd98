//! A content-stream interpreter for text: it follows the graphics and text state (CTM,
//! text matrix, font, size, spacing, rise, horizontal scaling), form XObjects included,
//! and emits each glyph's text with its position and size on the page.

use std::collections::HashMap;
use std::rc::Rc;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use super::font::{deref, Font};

/// Form XObjects nested deeper than this are not followed.
const MAX_FORM_DEPTH: usize = 12;
/// Operators interpreted per page, forms included, before giving up on the rest.
const MAX_OPS_PER_PAGE: usize = 4_000_000;
/// Glyphs kept per page.
const MAX_GLYPHS_PER_PAGE: usize = 400_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    /// `self × other` (apply self first, then other), as in the PDF spec.
    fn mul(&self, o: &Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [a2, b2, c2, d2, e2, f2] = o.0;
        Matrix([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
    }

    fn translate(tx: f32, ty: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, tx, ty])
    }
}

/// One shown glyph in page space (PDF user space of the page: y grows upwards).
#[derive(Debug, Clone)]
pub(crate) struct Glyph {
    pub x: f32,
    pub y: f32,
    /// Advance along the baseline.
    pub w: f32,
    /// Font size on the page.
    pub size: f32,
    /// Direction of the baseline in quarter turns counter-clockwise (0: left to right).
    /// `x` and `y` are in that direction's frame, so the text reads left to right.
    pub dir: u8,
    /// Byte range of the glyph's text in [`PageGlyphs::text`].
    pub start: u32,
    pub end: u32,
}

#[derive(Default)]
pub(crate) struct PageGlyphs {
    pub glyphs: Vec<Glyph>,
    pub text: String,
    /// Set when a limit cut the page short.
    pub truncated: bool,
}

#[derive(Clone)]
struct GState {
    ctm: Matrix,
    font: Option<Rc<Font>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    hscale: f32,
    leading: f32,
    rise: f32,
}

pub(crate) struct Interpreter<'d> {
    doc: &'d Document,
    fonts: HashMap<ObjectId, Rc<Font>>,
    inline_fonts: HashMap<Vec<u8>, Rc<Font>>,
    fallback: Rc<Font>,
    max_stream: usize,
}

struct Run<'a> {
    out: &'a mut PageGlyphs,
    ops: usize,
    forms: Vec<ObjectId>,
}

fn f(o: &Object) -> Option<f32> {
    match o {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

fn nums<const N: usize>(ops: &[Object]) -> Option<[f32; N]> {
    if ops.len() < N {
        return None;
    }
    let mut out = [0.0; N];
    for (slot, o) in out.iter_mut().zip(&ops[ops.len() - N..]) {
        *slot = f(o)?;
    }
    Some(out)
}

impl<'d> Interpreter<'d> {
    pub(crate) fn new(doc: &'d Document, max_stream: usize) -> Self {
        Self {
            doc,
            fonts: HashMap::new(),
            inline_fonts: HashMap::new(),
            fallback: Rc::new(Font::fallback(doc)),
            max_stream,
        }
    }

    /// The glyphs of one page.
    pub(crate) fn page(&mut self, page_id: ObjectId) -> Result<PageGlyphs, lopdf::Error> {
        let content = self
            .doc
            .get_page_content_with_limit(page_id, self.max_stream)?;
        let resources = self.page_resources(page_id);
        let mut out = PageGlyphs::default();
        let mut run = Run {
            out: &mut out,
            ops: 0,
            forms: Vec::new(),
        };
        let gs = GState {
            ctm: Matrix::IDENTITY,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            hscale: 1.0,
            leading: 0.0,
            rise: 0.0,
        };
        self.run(&content, &resources, gs, &mut run);
        Ok(out)
    }

    /// A page's resources merged from the page and its ancestors (nearest wins).
    fn page_resources(&self, page_id: ObjectId) -> Dictionary {
        let mut merged = Dictionary::new();
        if let Ok((direct, ids)) = self.doc.get_page_resources(page_id) {
            let all = direct.into_iter().chain(
                ids.iter()
                    .filter_map(|id| self.doc.get_dictionary(*id).ok()),
            );
            for res in all {
                for (k, v) in res.iter() {
                    if !merged.has(k) {
                        merged.set(k.clone(), v.clone());
                    }
                }
            }
        }
        merged
    }

    fn resource<'a>(
        &'a self,
        resources: &'a Dictionary,
        kind: &[u8],
        name: &[u8],
    ) -> Option<(Option<ObjectId>, &'a Object)> {
        let group = deref(resources.get(kind).ok()?, self.doc)?.as_dict().ok()?;
        let o = group.get(name).ok()?;
        let id = o.as_reference().ok();
        Some((id, deref(o, self.doc)?))
    }

    fn font(&mut self, resources: &Dictionary, name: &[u8]) -> Rc<Font> {
        let Some((id, obj)) = self.resource(resources, b"Font", name) else {
            return self.fallback.clone();
        };
        let Ok(dict) = obj.as_dict() else {
            return self.fallback.clone();
        };
        match id {
            Some(id) => {
                if let Some(f) = self.fonts.get(&id) {
                    return f.clone();
                }
                let font = Rc::new(Font::load(dict, self.doc));
                self.fonts.insert(id, font.clone());
                font
            }
            None => {
                if let Some(f) = self.inline_fonts.get(name) {
                    return f.clone();
                }
                let font = Rc::new(Font::load(dict, self.doc));
                self.inline_fonts.insert(name.to_vec(), font.clone());
                font
            }
        }
    }

    fn run(&mut self, content: &[u8], resources: &Dictionary, mut gs: GState, run: &mut Run) {
        let mut stack: Vec<GState> = Vec::new();
        let mut tm = Matrix::IDENTITY;
        let mut tlm = Matrix::IDENTITY;
        for op in Content::decode_iter(content) {
            let Ok(op) = op else { break };
            run.ops += 1;
            if run.ops > MAX_OPS_PER_PAGE || run.out.glyphs.len() >= MAX_GLYPHS_PER_PAGE {
                run.out.truncated = true;
                return;
            }
            let a = &op.operands;
            match op.operator.as_str() {
                "q" if stack.len() < 256 => stack.push(gs.clone()),
                "Q" => {
                    if let Some(s) = stack.pop() {
                        gs = s;
                    }
                }
                "cm" => {
                    if let Some(m) = nums::<6>(a) {
                        gs.ctm = Matrix(m).mul(&gs.ctm);
                    }
                }
                "BT" => {
                    tm = Matrix::IDENTITY;
                    tlm = Matrix::IDENTITY;
                }
                "Tf" => {
                    if let (Some(Object::Name(name)), Some(size)) =
                        (a.first(), a.get(1).and_then(f))
                    {
                        gs.font = Some(self.font(resources, name));
                        gs.size = size;
                    }
                }
                "Tc" => gs.char_spacing = nums::<1>(a).map_or(gs.char_spacing, |v| v[0]),
                "Tw" => gs.word_spacing = nums::<1>(a).map_or(gs.word_spacing, |v| v[0]),
                "Tz" => gs.hscale = nums::<1>(a).map_or(gs.hscale, |v| v[0] / 100.0),
                "TL" => gs.leading = nums::<1>(a).map_or(gs.leading, |v| v[0]),
                "Ts" => gs.rise = nums::<1>(a).map_or(gs.rise, |v| v[0]),
                "Td" | "TD" => {
                    if let Some([tx, ty]) = nums::<2>(a) {
                        if op.operator == "TD" {
                            gs.leading = -ty;
                        }
                        tlm = Matrix::translate(tx, ty).mul(&tlm);
                        tm = tlm;
                    }
                }
                "Tm" => {
                    if let Some(m) = nums::<6>(a) {
                        tlm = Matrix(m);
                        tm = tlm;
                    }
                }
                "T*" => {
                    tlm = Matrix::translate(0.0, -gs.leading).mul(&tlm);
                    tm = tlm;
                }
                "Tj" | "'" | "\"" => {
                    if op.operator != "Tj" {
                        if op.operator == "\"" {
                            if let Some([aw, ac]) = a.get(..2).and_then(nums::<2>) {
                                gs.word_spacing = aw;
                                gs.char_spacing = ac;
                            }
                        }
                        tlm = Matrix::translate(0.0, -gs.leading).mul(&tlm);
                        tm = tlm;
                    }
                    if let Some(Object::String(bytes, _)) = a.last() {
                        self.show(bytes, &gs, &mut tm, run.out);
                    }
                }
                "TJ" => {
                    if let Some(Object::Array(items)) = a.first() {
                        for item in items {
                            match item {
                                Object::String(bytes, _) => self.show(bytes, &gs, &mut tm, run.out),
                                other => {
                                    if let Some(n) = f(other) {
                                        let tx = -n / 1000.0 * gs.size * gs.hscale;
                                        tm = Matrix::translate(tx, 0.0).mul(&tm);
                                    }
                                }
                            }
                        }
                    }
                }
                "Do" => {
                    if let Some(Object::Name(name)) = a.first() {
                        self.form(name, resources, &gs, run);
                    }
                }
                _ => {}
            }
        }
    }

    fn form(&mut self, name: &[u8], resources: &Dictionary, gs: &GState, run: &mut Run) {
        let Some((Some(id), obj)) = self.resource(resources, b"XObject", name) else {
            return;
        };
        if run.forms.len() >= MAX_FORM_DEPTH || run.forms.contains(&id) {
            return;
        }
        let Ok(stream) = obj.as_stream() else { return };
        if stream.dict.get(b"Subtype").and_then(|o| o.as_name()).ok() != Some(b"Form".as_slice()) {
            return;
        }
        let Ok(content) = stream
            .decompressed_content_with_limit(self.max_stream)
            .or_else(|e| {
                if stream.dict.has(b"Filter") {
                    Err(e)
                } else {
                    Ok(stream.content.clone())
                }
            })
        else {
            return;
        };
        let matrix = stream
            .dict
            .get(b"Matrix")
            .ok()
            .and_then(|o| o.as_array().ok())
            .and_then(|a| nums::<6>(a))
            .map(Matrix)
            .unwrap_or(Matrix::IDENTITY);
        let own = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|o| deref(o, self.doc))
            .and_then(|o| o.as_dict().ok())
            .cloned();
        let mut inner = gs.clone();
        inner.ctm = matrix.mul(&gs.ctm);
        run.forms.push(id);
        self.run(&content, own.as_ref().unwrap_or(resources), inner, run);
        run.forms.pop();
    }

    fn show(&self, bytes: &[u8], gs: &GState, tm: &mut Matrix, out: &mut PageGlyphs) {
        let font = gs.font.clone().unwrap_or_else(|| self.fallback.clone());
        for (code, len) in font.codes(bytes) {
            let w0 = font.width(code) * font.scale;
            let word = if font.is_word_space(code, len) {
                gs.word_spacing
            } else {
                0.0
            };
            let trm = Matrix([gs.size * gs.hscale, 0.0, 0.0, gs.size, 0.0, gs.rise])
                .mul(tm)
                .mul(&gs.ctm);
            let start = out.text.len();
            font.text(code, len, &mut out.text);
            let end = out.text.len();
            let (ax, ay) = (trm.0[0], trm.0[1]);
            let size = (trm.0[2].hypot(trm.0[3]) * font.height).abs();
            let quarter = (ay.atan2(ax) / std::f32::consts::FRAC_PI_2).round() as i32;
            let dir = quarter.rem_euclid(4) as u8;
            let (px, py) = (trm.0[4], trm.0[5]);
            let (x, y) = match dir {
                0 => (px, py),
                1 => (py, -px),
                2 => (-px, -py),
                _ => (-py, px),
            };
            let adv = w0 * ax.hypot(ay);
            if end > start && out.glyphs.len() < MAX_GLYPHS_PER_PAGE {
                out.glyphs.push(Glyph {
                    x,
                    y,
                    w: adv,
                    size,
                    dir,
                    start: start as u32,
                    end: end as u32,
                });
            }
            let tx = (w0 * gs.size + gs.char_spacing + word) * gs.hscale;
            *tm = Matrix::translate(tx, 0.0).mul(tm);
        }
    }
}
