//! PDFs: text in reading order with pages kept, and every kind of hostile file (the
//! tricky corpus, and corrupt, truncated, bomb, nested and looping files made here) gets
//! its own clear status, with no crash and no hang, and never stops a folder's ingest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lopdf::{dictionary, Document, Object, Stream};
use quire_docs::pdf::{self, PdfLimits, PdfProblem};
use quire_docs::{
    chunk, ChunkOptions, DocEntry, DocStatus, IngestEvent, Library, LibraryOptions, PdfMode,
    WordEstimate,
};
use quire_tests::{quire_bin, shared_dir, TempDir};

fn isolated() -> LibraryOptions {
    LibraryOptions::new(ChunkOptions::default(), PdfMode::Isolated(quire_bin()))
}

/// Ingests `paths` into a fresh library; returns the entries by file name and the events.
fn ingest(
    dir: &TempDir,
    paths: &[PathBuf],
    opts: LibraryOptions,
) -> (BTreeMap<String, DocEntry>, Vec<IngestEvent>) {
    let mut lib = Library::open(&dir.path().join("index"), opts).expect("open");
    let mut events = Vec::new();
    lib.ingest(paths, &WordEstimate, &mut |e: &IngestEvent| {
        events.push(e.clone())
    })
    .expect("an ingest never fails as a whole on bad files");
    let entries = lib
        .documents()
        .map(|d| {
            (
                d.path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                d.clone(),
            )
        })
        .collect();
    (entries, events)
}

fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn each_tricky_file_gets_its_own_status() {
    let dir = TempDir::new("tricky");
    let tricky = shared_dir().join("corpus/tricky");
    let (docs, events) = ingest(&dir, &[tricky], isolated());
    assert_eq!(docs.len(), 9, "{docs:#?}");
    let status = |name: &str| {
        docs.get(name)
            .unwrap_or_else(|| panic!("{name} not in the library"))
    };
    let kind = |name: &str| match &status(name).status {
        DocStatus::Indexed => "indexed",
        DocStatus::NoTextLayer { .. } => "no_text_layer",
        DocStatus::PasswordProtected { .. } => "password_protected",
        DocStatus::Failed { .. } => "failed",
    };
    // Owner password only: opens without one and is indexed.
    assert_eq!(kind("encrypted_copy-protected_unstructured.pdf"), "indexed");
    assert!(status("encrypted_copy-protected_unstructured.pdf").chunks > 0);
    // Owner password only, and an image scan: opens, and says there is no text.
    assert_eq!(
        kind("encrypted_ownerpw_nocopy_ocrmypdf_algo4.pdf"),
        "no_text_layer"
    );
    // A user password: refused with that reason, not as "corrupt".
    for f in [
        "encrypted_userpw-is-password_unstructured.pdf",
        "encrypted_userpw_unknown_ocrmypdf_skew-encrypted.pdf",
    ] {
        assert_eq!(kind(f), "password_protected");
        assert!(status(f)
            .status
            .reason()
            .is_some_and(|r| r.contains("password")));
    }
    // Image-only scans, a giant page among them: "no text layer — scanned?".
    for f in [
        "hugepage_ocrmypdf_enormous.pdf",
        "scanned_ocrmypdf_c02-22_huckfinn-page.pdf",
        "scanned_ocrmypdf_skew.pdf",
    ] {
        assert_eq!(kind(f), "no_text_layer", "{f}");
        assert!(status(f)
            .status
            .reason()
            .is_some_and(|r| r.contains("no text layer — scanned?")));
    }
    // Mostly scanned with one page of text: indexed, and the user is told.
    let multi = status("scanned_ocrmypdf_multipage.pdf");
    assert_eq!(kind("scanned_ocrmypdf_multipage.pdf"), "indexed");
    assert_eq!(
        multi.warning.as_deref(),
        Some("5 of 6 pages have no text layer (scanned?)")
    );
    // 400 pages, with page progress along the way.
    let big = status("large_400pages_irs-manual_unstructured.pdf");
    assert_eq!((big.pages, &big.status), (400, &DocStatus::Indexed));
    assert!(big.chunks >= 400, "{} chunks", big.chunks);
    let progress: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            IngestEvent::Progress {
                path,
                pages_done,
                pages_total,
            } if path.ends_with("large_400pages_irs-manual_unstructured.pdf") => {
                Some((*pages_done, *pages_total))
            }
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 400, "{} progress events", progress.len());
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(progress.last(), Some(&(400, 400)));
    // Every file that has no chunks was reported as such.
    let reported = events
        .iter()
        .filter(|e| matches!(e, IngestEvent::Failed { .. }))
        .count();
    assert_eq!(reported, 6);
}

#[test]
fn papers_keep_page_count_reading_order_spans_and_titles() {
    // Page counts from the corpus manifest (poppler's).
    let manifest =
        std::fs::read_to_string(shared_dir().join("corpus/MANIFEST.tsv")).expect("manifest");
    let mut checked = 0;
    let mut titles = BTreeMap::new();
    for line in manifest.lines().filter(|l| l.starts_with("papers/")) {
        let cols: Vec<&str> = line.split('\t').collect();
        let path = shared_dir().join("corpus").join(cols[0]);
        let pages: usize = cols[2].parse().expect("page count");
        let text = pdf::extract(&path, &PdfLimits::default()).expect(cols[0]);
        assert_eq!(text.pages.len(), pages, "{}", cols[0]);
        assert_eq!(text.empty_pages(), 0, "{}", cols[0]);
        for p in &text.pages {
            assert!(
                !p.text.contains(['\u{fb01}', '\u{fb02}', '\u{00ad}']),
                "ligature or soft hyphen left on {} p{}",
                cols[0],
                p.number
            );
        }
        titles.insert(cols[0].to_string(), text.title.clone());
        checked += 1;
    }
    assert_eq!(checked, 26);

    // Titles. One cut short in the document information ("A loss-of-function mutation
    // in") is completed from the first page. A production code or a placeholder there
    // ("ipg1300180a", "Title") is no title, and neither is a missing one: the first
    // page's headline in display type is used, without a journal's "Research Article"
    // label. Where there is none, the library falls back to the file name.
    let title = |f: &str| titles[&format!("papers/{f}.pdf")].clone();
    for (file, want) in [
        (
            "pqa_10.1007-s00125-024-06103-w_diabetologia",
            "A loss-of-function mutation in KCNJ11 causing sulfonylurea-sensitive diabetes in early adult life",
        ),
        (
            "cermine_intpsychogeriatr-2014",
            "Stressful life events are not associated with the development of dementia",
        ),
        (
            "pqa_10.1101-2023.12.13.571462_biorxiv",
            "Fine-tuning protein language models boosts predictions across diverse tasks",
        ),
        (
            "cermine_hindawi-rrp-2010_heart-failure-programmes-patient-experiences",
            "Patient Experiences of Structured Heart Failure Programmes",
        ),
    ] {
        assert_eq!(title(file).as_deref(), Some(want), "{file}");
    }
    assert!(
        titles.values().filter(|t| t.is_some()).count() >= 25,
        "{titles:#?}"
    );
    for (file, t) in &titles {
        if let Some(t) = t {
            let last = t.rsplit(' ').next().unwrap_or_default();
            assert!(
                !["in", "of", "the", "and", "for", "with"].contains(&last),
                "{file}: title {t:?} ends mid-phrase"
            );
        }
    }

    // A two-column page reads column by column, lines rejoined in order.
    let path = shared_dir()
        .join("corpus/papers/cermine_bmc-jtmo-2010_dvt-prophylaxis-trauma-systematic-review.pdf");
    let text = pdf::extract(&path, &PdfLimits::default()).expect("paper");
    let page2 = flat(&text.pages[1].text);
    let left = "In this review we calculated the risk of bleeding and HIT to be 3.9% and 0.7% \
                respectively. These values are slightly higher than the previously published \
                rates of 3.1% and 0.4% [9].";
    assert!(page2.contains(left), "{page2}");

    // Chunk spans point at the exact passage of the page text.
    let chunks = chunk::split("doc", &text.pages, ChunkOptions::default(), &WordEstimate);
    assert!(chunks.len() > 10);
    for c in &chunks {
        let page = &text.pages[c.page as usize - 1];
        let span: String = page
            .text
            .chars()
            .skip(c.span.0)
            .take(c.span.1 - c.span.0)
            .collect();
        assert_eq!(span, c.text, "chunk on page {}", c.page);
    }
}

/// A one-page PDF whose page content is `content` (with font /F1 = Helvetica), built
/// with extra objects by `extra`.
fn make_pdf(
    content: &[u8],
    compress: bool,
    extra: impl FnOnce(&mut Document, &mut lopdf::Dictionary),
) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut resources = dictionary! { "Font" => dictionary! { "F1" => font_id } };
    extra(&mut doc, &mut resources);
    let resources_id = doc.add_object(resources);
    let mut stream = Stream::new(dictionary! {}, content.to_vec());
    if compress {
        stream.compress().expect("compress");
    }
    let content_id = doc.add_object(stream);
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

#[test]
fn hostile_pdfs_made_here_fail_cleanly_and_never_stop_the_folder() {
    let dir = TempDir::new("hostile");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let write = |name: &str, bytes: &[u8]| std::fs::write(files.join(name), bytes).expect("write");

    // A good one, so a failure below is the file's and not the generator's.
    write(
        "good.pdf",
        &make_pdf(
            b"BT /F1 12 Tf 72 700 Td (Quire reads generated pages) Tj ET",
            true,
            |_, _| {},
        ),
    );
    // Not a PDF at all, and garbage after a PDF header.
    write("not-a-pdf.pdf", b"just some words, no PDF here\n");
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    write("garbage.pdf", &garbage);
    // A real paper cut in half.
    let paper = std::fs::read(shared_dir().join("corpus/papers/cermine_intpsychogeriatr-2014.pdf"))
        .expect("paper");
    write("truncated.pdf", &paper[..paper.len() / 2]);
    // A decompression bomb: 300 MiB of page content in a few hundred KiB.
    let bomb = vec![b' '; 300 << 20];
    write("bomb.pdf", &make_pdf(&bomb, true, |_, _| {}));
    drop(bomb);
    // Operands nested a million deep in the page content (a parser's recursion).
    let mut deep = b"BT /F1 12 Tf 72 700 Td (deeply nested operands follow) Tj ET ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 1_000_000));
    write("deep.pdf", &make_pdf(&deep, true, |_, _| {}));
    // A form XObject that draws itself: followed once, never forever.
    write(
        "loop.pdf",
        &make_pdf(b"/X0 Do", false, |doc, res| {
            let form_id = doc.new_object_id();
            let form = Stream::new(
                dictionary! {
                    "Type" => "XObject", "Subtype" => "Form",
                    "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
                    "Resources" => dictionary! {
                        "XObject" => dictionary! { "X0" => form_id },
                        "Font" => res.get(b"Font").expect("font").clone(),
                    },
                },
                b"BT /F1 12 Tf 72 700 Td (looping form text) Tj ET /X0 Do".to_vec(),
            );
            doc.objects.insert(form_id, Object::Stream(form));
            res.set("XObject", dictionary! { "X0" => form_id });
        }),
    );

    let mut opts = isolated();
    opts.pdf_limits.max_stream_bytes = 64 << 20;
    let (docs, _) = ingest(&dir, &[files], opts);
    let get = |n: &str| {
        docs.get(n)
            .unwrap_or_else(|| panic!("{n} missing: {docs:#?}"))
    };
    let reason = |n: &str| get(n).status.reason().unwrap_or("").to_string();

    assert_eq!(get("good.pdf").status, DocStatus::Indexed);
    assert_eq!(get("loop.pdf").status, DocStatus::Indexed);
    assert!(
        reason("not-a-pdf.pdf").contains("no PDF header"),
        "{}",
        reason("not-a-pdf.pdf")
    );
    assert!(
        reason("garbage.pdf").starts_with("not a readable PDF"),
        "{}",
        reason("garbage.pdf")
    );
    assert!(
        reason("bomb.pdf").contains("decompression bomb"),
        "{}",
        reason("bomb.pdf")
    );
    // A file cut in half has lost its page tree; nesting past the parser's limit ends
    // the page's content there, and the text before it is kept.
    assert!(
        reason("truncated.pdf").contains("truncated or damaged"),
        "{}",
        reason("truncated.pdf")
    );
    assert_eq!(get("deep.pdf").status, DocStatus::Indexed);

    let text =
        pdf::extract(&dir.path().join("files/loop.pdf"), &PdfLimits::default()).expect("loop");
    assert_eq!(text.pages[0].text.matches("looping form text").count(), 1);
    let good =
        pdf::extract(&dir.path().join("files/good.pdf"), &PdfLimits::default()).expect("good");
    assert_eq!(good.pages[0].text, "Quire reads generated pages");
}

/// A stand-in PDF reader: a shell script run in place of the worker.
fn fake_worker(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[test]
fn the_isolated_reader_is_bounded_in_time_memory_and_crashes() {
    let dir = TempDir::new("isolate");
    let paper = shared_dir().join("corpus/papers/cermine_intpsychogeriatr-2014.pdf");
    let limits = PdfLimits {
        wall: Duration::from_secs(2),
        ..PdfLimits::default()
    };
    let hang = fake_worker(dir.path(), "hang.sh", "exec sleep 60");
    let started = std::time::Instant::now();
    let r = pdf::extract_isolated(&hang, &paper, &limits, &mut |_, _| {});
    assert_eq!(r.unwrap_err(), PdfProblem::TimedOut(2));
    assert!(started.elapsed() < Duration::from_secs(20));

    let crash = fake_worker(dir.path(), "crash.sh", "kill -SEGV $$");
    let r = pdf::extract_isolated(&crash, &paper, &limits, &mut |_, _| {});
    assert_eq!(r.unwrap_err(), PdfProblem::Crashed("signal 11".into()));

    // The real reader under a memory limit too small for the 400-page manual.
    let big = shared_dir().join("corpus/tricky/large_400pages_irs-manual_unstructured.pdf");
    let tight = PdfLimits {
        memory_bytes: 40 << 20,
        ..PdfLimits::default()
    };
    let r = pdf::extract_isolated(&quire_bin(), &big, &tight, &mut |_, _| {});
    match r {
        Err(PdfProblem::TooLarge(m)) => assert!(m.contains("memory"), "{m}"),
        other => panic!("expected an out-of-memory refusal, got {other:?}"),
    }
    // And with room to work it reads every page.
    let r = pdf::extract_isolated(&quire_bin(), &big, &PdfLimits::default(), &mut |_, _| {});
    assert_eq!(r.expect("reads").pages.len(), 400);
}
