//! `quire ask`, `quire summarize` and `quire eval qa`: thin front doors over the engine's
//! answering and summarizing.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use quire_engine::answer::{self, AnswerEvent, AskOptions};
use quire_engine::summarize::{self, SummarizeOptions, SummaryEvent};
use quire_engine::CancelToken;
use serde::Deserialize;

fn ask_options(k: usize) -> AskOptions {
    AskOptions {
        k,
        ..AskOptions::default()
    }
}

pub struct AskArgs<'a> {
    pub data_dir: &'a Path,
    pub passphrase: bool,
    pub model: Option<&'a Path>,
    pub question: &'a str,
    pub conversation: Option<i64>,
    pub k: usize,
    pub json: bool,
}

pub fn ask(a: AskArgs) -> Result<()> {
    let rt = crate::runtime()?;
    let mode = crate::key_mode(a.passphrase)?;
    let store = rt.block_on(quire_engine::store::open(a.data_dir, &mode))?;
    let key = rt.block_on(quire_engine::store::index_key(a.data_dir, &store))?;
    let lib = quire_engine::library::open(a.data_dir, &key)?;
    let mut model = crate::load(a.model, a.data_dir)?;
    let cancel = CancelToken::new();
    crate::install_ctrlc(&cancel);
    let json = a.json;
    let mut stdout = std::io::stdout();
    let mut sink = |e: &AnswerEvent| match e {
        AnswerEvent::Sources { sources, refused } if !json && !refused => {
            eprintln!("Sources:");
            for s in sources.iter() {
                eprintln!("  [{}] {} — page {}", s.n, s.title, s.page);
            }
            eprintln!();
        }
        AnswerEvent::Token { text } if !json => {
            print!("{text}");
            let _ = stdout.flush();
        }
        _ => {}
    };
    let result = rt.block_on(answer::ask_in_conversation(
        &store,
        a.conversation,
        &mut model,
        &lib,
        a.question,
        &ask_options(a.k),
        &cancel,
        &mut sink,
    ));
    rt.block_on(store.close());
    let (conversation, ans) = result?;
    if json {
        let out = serde_json::json!({
            "conversation_id": conversation,
            "answer": ans.answer,
            "citations": ans.citations,
            "unsupported_sentences": ans.unsupported_sentences,
            "refused": ans.refused,
            "invalid_citations": ans.invalid_citations,
            "sources": ans.sources,
            "query": ans.query,
            "evidence": ans.evidence,
            "draft": ans.draft,
            "stop": ans.stop,
            "timings": ans.timings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!();
    if ans.refused {
        if ans.draft.is_some() {
            println!("\n(Nothing in the answer above is supported by your documents, so Quire withholds it.)");
        }
        println!("\n{}", ans.answer);
        if !ans.sources.is_empty() {
            println!("\nThe closest passages:");
            for s in &ans.sources {
                println!(
                    "  {} — page {}: {}",
                    s.title,
                    s.page,
                    answer::text::clip(&s.text.replace('\n', " "), 160)
                );
            }
        }
    } else {
        println!("\n--- answer (checked) ---\n{}", ans.answer);
        if !ans.citations.is_empty() {
            println!("\nCitations:");
            for c in &ans.citations {
                let how = if c.inferred {
                    " (matched by Quire)"
                } else {
                    ""
                };
                println!(
                    "  [{}] {} — page {}{how}\n      \"{}\"",
                    c.n,
                    c.title,
                    c.page,
                    answer::text::clip(&c.quote.replace('\n', " "), 240)
                );
            }
        }
        if !ans.unsupported_sentences.is_empty() {
            println!("\nNot supported by the sources:");
            for s in &ans.unsupported_sentences {
                println!("  - {s}");
            }
        }
    }
    eprintln!(
        "\n(conversation {conversation}; {} ms to first token, {} ms in all)",
        ans.timings.ttft_ms, ans.timings.total_ms
    );
    Ok(())
}

pub fn summarize(
    data_dir: &Path,
    passphrase: bool,
    model: Option<&Path>,
    target: &str,
    json: bool,
) -> Result<()> {
    // A file on disk is read directly; anything else is a library document id.
    let (title, pages) = if Path::new(target).is_file() {
        quire_engine::docs::read_document(Path::new(target), &quire_engine::library::options())?
    } else {
        let lib = crate::open_library(data_dir, passphrase)?;
        lib.read(target).with_context(|| {
            format!("{target} is neither a file nor a document id (see `quire docs list`)")
        })?
    };
    let mut model = crate::load(model, data_dir)?;
    let cancel = CancelToken::new();
    crate::install_ctrlc(&cancel);
    let mut sink = |e: &SummaryEvent| {
        if let SummaryEvent::PieceStarted { index, total } = e {
            eprint!("\rsummarizing part {} of {total}…", index + 1);
            let _ = std::io::stderr().flush();
        }
    };
    let s = summarize::summarize(
        &mut model,
        &title,
        &pages,
        &SummarizeOptions::default(),
        &cancel,
        &mut sink,
    )?;
    eprintln!();
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("# {}\n", s.title);
    for p in &s.pieces {
        let pages = if p.first_page == p.last_page {
            format!("page {}", p.first_page)
        } else {
            format!("pages {}–{}", p.first_page, p.last_page)
        };
        let section = p
            .section
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        println!("Part {} ({pages}{section}):\n{}\n", p.index + 1, p.summary);
    }
    if let Some(m) = &s.meeting {
        let list = |name: &str, items: &[summarize::MeetingItem]| {
            if items.is_empty() {
                return;
            }
            println!("## {name}");
            for i in items {
                let mut extra = Vec::new();
                if let Some(o) = &i.owner {
                    extra.push(format!("owner: {o}"));
                }
                if let Some(d) = &i.due {
                    extra.push(format!("due: {d}"));
                }
                extra.push(format!("under \"{}\"", i.section));
                println!("- {} ({})", i.text, extra.join("; "));
            }
            println!();
        };
        list("Decisions", &m.decisions);
        list("Action items", &m.action_items);
        list("Open questions", &m.open_questions);
    }
    if s.cancelled {
        println!("(stopped)");
    }
    Ok(())
}

#[derive(Deserialize)]
struct QaItem {
    question: String,
    file: Option<String>,
    page: Option<u32>,
}

fn median(v: &mut [u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

pub fn eval_qa(
    data_dir: &Path,
    passphrase: bool,
    model: Option<&Path>,
    file: &PathBuf,
    k: usize,
    retrieval_only: bool,
    json: bool,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let items: Vec<QaItem> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", file.display(), i + 1))
        })
        .collect::<Result<_>>()?;
    let lib = crate::open_library(data_dir, passphrase)?;
    for it in &items {
        if let Some(f) = &it.file {
            if !lib.documents().any(|d| d.path.ends_with(f)) {
                bail!("{f} (named in {}) is not in the library: ingest the corpus first, e.g. `quire ingest ../shared/corpus/papers ../shared/corpus/notes`", file.display());
            }
        }
    }
    let mut model = if retrieval_only {
        None
    } else {
        Some(crate::load(model, data_dir)?)
    };
    let opts = ask_options(k);
    let cancel = CancelToken::new();
    let mut rows = Vec::new();
    let (mut answerable, mut in_top5, mut cites_ok, mut unans, mut refused_unans, mut false_ref) =
        (0, 0, 0, 0, 0, 0);
    let (mut invalid, mut dangling, mut unsupported, mut sentences) =
        (0usize, 0usize, 0usize, 0usize);
    let (mut ttft, mut total): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (i, it) in items.iter().enumerate() {
        eprint!("\r{} / {}", i + 1, items.len());
        let _ = std::io::stderr().flush();
        let holds = |path: &str, page: u32| {
            it.file
                .as_deref()
                .is_some_and(|f| Path::new(path).ends_with(f))
                && Some(page) == it.page
        };
        let (top5, cosine) = answer::retrieve(&lib, &it.question, 5)?;
        let hit = top5.iter().any(|h| holds(&h.path, h.page));
        let evidence = answer::evidence(&it.question, &top5, cosine);
        let (refused, cited, ans) = match model.as_mut() {
            Some(m) => {
                let a = answer::ask(m, &lib, &[], &it.question, &opts, &cancel, &mut |_| {})?;
                let cited = a.citations.iter().any(|c| holds(&c.path, c.page));
                invalid += a.invalid_citations;
                dangling += a.dangling_citations();
                unsupported += a.unsupported_sentences.len();
                sentences += a.sentences.len();
                if !a.refused {
                    ttft.push(a.timings.ttft_ms);
                }
                total.push(a.timings.total_ms);
                (a.refused, cited, Some(a))
            }
            None => (opts.refusal.refuses(&evidence), false, None),
        };
        if it.file.is_some() {
            answerable += 1;
            in_top5 += hit as usize;
            cites_ok += cited as usize;
            false_ref += refused as usize;
        } else {
            unans += 1;
            refused_unans += refused as usize;
        }
        rows.push(serde_json::json!({
            "question": it.question,
            "file": it.file,
            "page": it.page,
            "evidence_in_top5": hit,
            "refused": refused,
            "cites_evidence_page": cited,
            "top_cosine": evidence.top_cosine,
            "coverage": evidence.coverage,
            "answer": ans.as_ref().map(|a| a.answer.clone()),
            "sources": ans.as_ref().map(|a| a.sources.iter().map(|s| serde_json::json!({"n": s.n, "path": s.path, "page": s.page})).collect::<Vec<_>>()),
            "citations": ans.as_ref().map(|a| a.citations.iter().map(|c| serde_json::json!({"n": c.n, "path": c.path, "page": c.page, "inferred": c.inferred})).collect::<Vec<_>>()),
            "unsupported_sentences": ans.as_ref().map(|a| a.unsupported_sentences.clone()),
            "draft": ans.as_ref().and_then(|a| a.draft.clone()),
            "sentences": ans.as_ref().map(|a| a.sentences.iter().map(|c| serde_json::json!({"text": c.text, "supported": c.supported, "lexical": c.lexical, "semantic": c.semantic})).collect::<Vec<_>>()),
            "timings": ans.as_ref().map(|a| a.timings),
        }));
    }
    eprintln!();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let summary = serde_json::json!({
        "questions": items.len(),
        "answerable": answerable,
        "unanswerable": unans,
        "model": model.as_ref().map(|m| m.info().name.clone()),
        "evidence_page_in_top5_pct": pct(in_top5, answerable),
        "answer_cites_evidence_page_pct": pct(cites_ok, answerable),
        "refusal_on_unanswerable_pct": pct(refused_unans, unans),
        "false_refusal_pct": pct(false_ref, answerable),
        "invalid_citations_dropped": invalid,
        "invalid_citations_reaching_user": dangling,
        "unsupported_sentences_pct": pct(unsupported, sentences),
        "median_ttft_ms": median(&mut ttft),
        "median_total_ms": median(&mut total),
        "retrieval_only": retrieval_only,
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"summary": summary, "questions": rows})
            )?
        );
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}
