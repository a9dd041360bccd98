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
    /// The sentence of the page that answers, as the page's text gives it.
    #[serde(default)]
    evidence: Option<String>,
}

/// A text's words, lowercased, with everything that is not a letter or digit between
/// them: PDF line breaks, hyphenation at a line's end and quote styles do not matter.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Runs of this many consecutive words of an evidence sentence: one of them in a passage
/// means the passage holds (that part of) the sentence.
const EVIDENCE_RUN: usize = 6;

/// Whether `passage` holds the evidence sentence, or a run of [`EVIDENCE_RUN`] of its
/// words: the passage was cut inside the sentence, but what answers is there.
fn holds_evidence(passage: &str, evidence: &str) -> bool {
    let (p, e) = (words(passage), words(evidence));
    if e.is_empty() {
        return false;
    }
    let run = e.len().min(EVIDENCE_RUN);
    e.windows(run).any(|w| p.windows(run).any(|x| x == w))
}

fn median(v: &mut [u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// What `eval qa` runs for each question.
pub enum QaMode<'a> {
    /// Retrieval and the model's answer.
    Answer,
    /// Retrieval and the refusal decision only.
    RetrievalOnly,
    /// The answers saved by an earlier `--json` run, judged again.
    Replay(&'a Path),
}

/// One answer as `eval qa` judges it, with what a replay needs: the model's raw text
/// (none when it never ran) and every source it was given.
struct Judged {
    answer: answer::Answer,
    generated: Option<String>,
    given: Vec<answer::Source>,
}

/// One saved answer judged again: the model's text finished against every source it
/// was written from. True as well when the saved run never asked the model (refused
/// before generating) but the library would now let the question through: counted as
/// refused, and as not replayable.
fn replay_row(
    lib: &quire_engine::docs::Library,
    question: &str,
    row: &serde_json::Value,
    opts: &answer::AskOptions,
) -> Result<(Judged, bool)> {
    if row.get("generated").is_none() {
        bail!("the saved run holds no model text (it predates --replay): run `quire eval qa --json` again to save one");
    }
    let (mut answer, _) = answer::begin(lib, &[], question, opts)?;
    let Some(generated) = row["generated"].as_str().filter(|_| !answer.refused) else {
        let missing = !answer.refused;
        answer.refused = true;
        answer.answer = answer::REFUSAL.to_string();
        let judged = Judged {
            answer,
            generated: None,
            given: Vec::new(),
        };
        return Ok((judged, missing));
    };
    let given: Vec<answer::Source> = serde_json::from_value(row["given_sources"].clone()).context(
        "the saved run does not hold its sources' text: replay needs a --json run of this version",
    )?;
    answer.sources = given.clone();
    answer::finish(&mut answer, generated, lib);
    let judged = Judged {
        answer,
        generated: Some(generated.to_string()),
        given,
    };
    Ok((judged, false))
}

/// The 95 % Wilson score interval of `k` successes in `n`, in percent: how far a rate
/// measured on a few dozen questions can be from the rate on questions like them. With
/// 58 answerable questions, 50 % means anything from 37.5 % to 62.5 %.
fn wilson95(k: usize, n: usize) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    let round = |x: f64| (x * 1000.0).round() / 10.0;
    Some([
        round((centre - half).max(0.0)),
        round((centre + half).min(1.0)),
    ])
}

pub fn eval_qa(
    data_dir: &Path,
    passphrase: bool,
    model: Option<&Path>,
    file: &PathBuf,
    k: usize,
    mode: QaMode<'_>,
    json: bool,
) -> Result<()> {
    let (retrieval_only, replay) = match mode {
        QaMode::Answer => (false, None),
        QaMode::RetrievalOnly => (true, None),
        QaMode::Replay(p) => (false, Some(p)),
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // A replay re-judges the answers of an earlier `--json` run: its drafts are checked
    // again against the sources they were written from, with no model run, so a change
    // to citation handling or verification is measured exactly, free of the model's
    // sensitivity to its prompt.
    let mut saved_model = None;
    let saved: Option<Vec<serde_json::Value>> = match replay {
        Some(p) => {
            let not_eval = || {
                format!(
                    "{} is not the --json output of `quire eval qa`",
                    p.display()
                )
            };
            let saved_text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let mut v: serde_json::Value =
                serde_json::from_str(&saved_text).with_context(not_eval)?;
            saved_model = v["summary"]["model"].as_str().map(str::to_string);
            match v["questions"].take() {
                serde_json::Value::Array(rows) => Some(rows),
                _ => bail!(not_eval()),
            }
        }
        None => None,
    };
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
    let mut model = if retrieval_only || saved.is_some() {
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
    let mut not_replayable = 0usize;
    // Answerable questions whose evidence sentence was in the passages the model was
    // given, and of those, the answers that cite the evidence page: what the prompt
    // lost, apart from what the model made of it.
    let (mut given_evidence, mut cites_given) = (0usize, 0usize);
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
        let judged = if let Some(rows) = &saved {
            let row = rows
                .get(i)
                .filter(|r| r["question"].as_str() == Some(it.question.as_str()))
                .with_context(|| {
                    format!(
                        "the saved run has no question {} (\"{}\"): replay the output of the same set",
                        i + 1,
                        it.question
                    )
                })?;
            let (judged, missing) = replay_row(&lib, &it.question, row, &opts)?;
            not_replayable += missing as usize;
            Some(judged)
        } else if let Some(m) = model.as_mut() {
            let (mut generated, mut given) = (String::new(), Vec::new());
            let a = answer::ask(
                m,
                &lib,
                &[],
                &it.question,
                &opts,
                &cancel,
                &mut |e| match e {
                    answer::AnswerEvent::Sources {
                        sources,
                        refused: false,
                    } => given = sources.to_vec(),
                    answer::AnswerEvent::Token { text } => generated.push_str(text),
                    _ => {}
                },
            )?;
            Some(Judged {
                // Refused before generating: nothing to replay.
                generated: a.stop.is_some().then_some(generated),
                answer: a,
                given,
            })
        } else {
            None
        };
        let (refused, cited, ans, generated, given) = match judged {
            Some(Judged {
                answer: a,
                generated,
                given,
            }) => {
                let cited = a.citations.iter().any(|c| holds(&c.path, c.page));
                invalid += a.invalid_citations;
                dangling += a.dangling_citations();
                unsupported += a.unsupported_sentences.len();
                sentences += a.sentences.len();
                if saved.is_none() {
                    if !a.refused {
                        ttft.push(a.timings.ttft_ms);
                    }
                    total.push(a.timings.total_ms);
                }
                (a.refused, cited, Some(a), generated, given)
            }
            None => (
                opts.refusal.refuses(&evidence),
                false,
                None,
                None,
                Vec::new(),
            ),
        };
        let evidence_given = match (&ans, &it.evidence) {
            (Some(_), Some(e)) if it.file.is_some() => {
                Some(given.iter().any(|s| holds_evidence(&s.text, e)))
            }
            _ => None,
        };
        if evidence_given == Some(true) {
            given_evidence += 1;
            cites_given += cited as usize;
        }
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
            "evidence_given": evidence_given,
            "refused": refused,
            "cites_evidence_page": cited,
            "top_cosine": evidence.top_cosine,
            "coverage": evidence.coverage,
            "answer": ans.as_ref().map(|a| a.answer.clone()),
            "sources": ans.as_ref().map(|a| a.sources.iter().map(|s| serde_json::json!({"n": s.n, "path": s.path, "page": s.page})).collect::<Vec<_>>()),
            "generated": generated,
            "given_sources": given,
            "citations": ans.as_ref().map(|a| a.citations.iter().map(|c| serde_json::json!({"n": c.n, "path": c.path, "page": c.page, "inferred": c.inferred})).collect::<Vec<_>>()),
            "unsupported_sentences": ans.as_ref().map(|a| a.unsupported_sentences.clone()),
            "draft": ans.as_ref().and_then(|a| a.draft.clone()),
            "sentences": ans.as_ref().map(|a| a.sentences.iter().map(|c| serde_json::json!({"text": c.text, "supported": c.supported, "lexical": c.lexical, "semantic": c.semantic, "asked_cosine": c.asked_cosine, "cites": c.cites})).collect::<Vec<_>>()),
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
        "model": model.as_ref().and_then(|m| m.info().name.clone()).or(saved_model),
        "evidence_page_in_top5_pct": pct(in_top5, answerable),
        "answer_cites_evidence_page_pct": pct(cites_ok, answerable),
        "evidence_given_to_model_pct": (!retrieval_only).then(|| pct(given_evidence, answerable)),
        "cites_evidence_page_when_given_pct": (!retrieval_only).then(|| pct(cites_given, given_evidence)),
        "refusal_on_unanswerable_pct": pct(refused_unans, unans),
        "false_refusal_pct": pct(false_ref, answerable),
        "invalid_citations_dropped": invalid,
        "invalid_citations_reaching_user": dangling,
        "unsupported_sentences_pct": pct(unsupported, sentences),
        "median_ttft_ms": median(&mut ttft),
        "median_total_ms": median(&mut total),
        "retrieval_only": retrieval_only,
        "replayed": replay.map(|p| p.display().to_string()),
        "not_replayable": not_replayable,
        "ci95_pct": {
            "evidence_page_in_top5": wilson95(in_top5, answerable),
            "answer_cites_evidence_page": wilson95(cites_ok, answerable),
            "refusal_on_unanswerable": wilson95(refused_unans, unans),
            "false_refusal": wilson95(false_ref, answerable),
        },
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

#[cfg(test)]
mod tests {
    use super::{holds_evidence, wilson95};

    #[test]
    fn evidence_is_found_across_line_breaks_and_cuts_but_not_in_other_text() {
        let evidence = "Failed retrieval rates in trauma patients are reported between 0% and 4% with a calculated rate of 2.8% (Table 6).";
        // As the PDF gives it: line breaks, and a word hyphenated across two lines
        // (its halves match nothing, but the sentence's other runs of words do).
        let page = "Failed\nretrieval rates in trauma patients are reported between\n0% and 4% with a calcu-\nlated rate of 2.8% (Table 6).";
        assert!(holds_evidence(page, evidence));
        // A passage cut inside the sentence still holds what answers.
        assert!(holds_evidence(
            "... are reported between 0% and 4% with a",
            evidence
        ));
        // The same topic in other words is not the evidence.
        assert!(!holds_evidence(
            "Retrieval of the filter failed in 2.8% of trauma patients (Table 6).",
            evidence
        ));
        assert!(!holds_evidence(page, ""));
        // A short evidence line is matched whole.
        assert!(holds_evidence(
            "Mara: Four out of twelve said yes.",
            "Four out of twelve"
        ));
        assert!(!holds_evidence(
            "Four out of ten said yes.",
            "Four out of twelve"
        ));
    }

    #[test]
    fn wilson_intervals_match_the_textbook_values() {
        assert_eq!(wilson95(29, 58), Some([37.5, 62.5]));
        // None of 10: the interval still reaches 27.8 %, not 0.
        assert_eq!(wilson95(0, 10), Some([0.0, 27.8]));
        assert_eq!(wilson95(10, 10), Some([72.2, 100.0]));
        assert_eq!(wilson95(0, 0), None);
    }
}
