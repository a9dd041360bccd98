//! `quire`: the command line, a thin front door over `quire-engine`.

use std::io::{BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use quire_engine::docs::SearchMode;
use quire_engine::{
    bench, chat::ChatSession, paths, CancelToken, ChatMessage, EngineError, LoadOptions, Model,
    SamplingParams,
};

#[derive(Parser)]
#[command(
    name = "quire",
    version,
    about = "Chat with your own documents, offline."
)]
struct Cli {
    /// Where Quire keeps its data [default: the platform data dir]
    #[arg(long, global = true, env = "QUIRE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Compute threads [default: all cores]
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    /// Key the encrypted store with a passphrase (from $QUIRE_PASSPHRASE, else a prompt)
    /// instead of the OS keychain
    #[arg(long, global = true)]
    passphrase: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Facts about a model file
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Print the token ids of TEXT as a JSON array
    Tokenize {
        #[command(flatten)]
        model: ModelArg,
        /// Parse special-token strings such as <|im_start|> into control tokens
        #[arg(long)]
        special: bool,
        text: String,
    },
    /// Generate text from a prompt
    Generate(GenerateArgs),
    /// Chat interactively (/reset clears the history, /exit quits)
    Chat {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// System prompt
        #[arg(long)]
        system: Option<String>,
    },
    /// Add files and folders (recursively) to the library; unchanged files are skipped
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        model: ModelArg,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// The documents in the library
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
    /// Ask a question of your documents: a short answer citing document and page, or
    /// "I couldn't find this in your documents" with the closest passages
    Ask {
        question: String,
        /// Continue this conversation (see `quire conversations list`)
        #[arg(long, value_name = "ID")]
        conversation: Option<i64>,
        /// Passages to retrieve (those that fit the context are used)
        #[arg(short, default_value_t = 6)]
        k: usize,
        #[command(flatten)]
        model: ModelArg,
        /// One JSON object {answer, citations, unsupported_sentences, refused, timings, ...}
        #[arg(long)]
        json: bool,
    },
    /// Summarize a note or PDF (a file, or a library document id), in pieces when it is
    /// longer than the context; meeting notes also get decisions, action items and open
    /// questions
    Summarize {
        /// A file, or a document id from `quire docs list`
        target: String,
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        json: bool,
    },
    /// Search the library
    Search {
        query: String,
        #[arg(short, default_value_t = 5)]
        k: usize,
        #[arg(long, value_enum, default_value = "hybrid")]
        mode: RetrievalMode,
        #[arg(long)]
        json: bool,
    },
    /// Conversations in the encrypted store
    Conversations {
        #[command(subcommand)]
        command: ConversationsCommand,
    },
    /// In-app notes in the encrypted store
    Notes {
        #[command(subcommand)]
        command: NotesCommand,
    },
    /// The encrypted store's key
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print a PDF's text page by page, as Quire reads it
    PdfText {
        file: PathBuf,
        /// One JSON object {status, reason, pages: [{number, text}]}
        #[arg(long)]
        json: bool,
    },
    /// Measure retrieval quality
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Measure prefill and decode speed, time to first token and peak memory
    Bench {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        /// Prompt length for the time to first token (a typical RAG prompt)
        #[arg(long, default_value_t = 1000)]
        ttft_tokens: usize,
        /// Measured runs per figure (the median is reported)
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Attention's arithmetic: Quire's own (`fast`), or llama.cpp's step for step
        /// (`llama-cpp`, slower; for comparing output with llama.cpp's)
        #[arg(long, value_enum, default_value_t = AttentionArg::Fast)]
        attention: AttentionArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AttentionArg {
    Fast,
    LlamaCpp,
}

#[derive(Subcommand)]
enum ConversationsCommand {
    /// Newest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// Every message of one conversation
    Show {
        id: i64,
    },
    /// Markdown with the citations of each answer
    Export {
        id: i64,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Find conversations by their text
    Search {
        query: String,
        #[arg(long)]
        json: bool,
    },
    Rename {
        id: i64,
        title: String,
    },
    /// Gone for good (secure delete)
    Delete {
        id: i64,
    },
}

#[derive(Subcommand)]
enum NotesCommand {
    Add {
        #[arg(long)]
        title: String,
        /// Markdown body ("-" reads it from standard input)
        #[arg(long)]
        body: String,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        id: i64,
    },
    Edit {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        body: Option<String>,
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
    },
    Delete {
        id: i64,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Where the key comes from and whether it opens the store
    Status,
    /// Re-encrypt the store and the search index under a new key. Close the desktop app
    /// first. Interrupting it loses nothing: the next start finishes the change.
    Rotate {
        /// Switch to (or stay in) passphrase mode: the new passphrase comes from
        /// $QUIRE_NEW_PASSPHRASE, else a prompt (twice)
        #[arg(long, conflicts_with = "to_keychain")]
        to_passphrase: bool,
        /// Switch to (or stay in) keychain mode: a new random key in the system keychain
        #[arg(long)]
        to_keychain: bool,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Architecture, parameters, quantization, context length, chat template, sha256
    Info {
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DocsCommand {
    /// Every document with its status
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a document (by id or path) and its chunks
    Remove { id_or_path: String },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// nDCG@10 and Recall@100 over a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)
    Beir {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "hybrid")]
        mode: RetrievalMode,
        /// Split documents into chunks of about N model tokens (a document ranks by its
        /// best chunk) [default: each document whole]
        #[arg(long, value_name = "N")]
        chunk_tokens: Option<usize>,
        /// Seal the index on disk, as the library does (to measure what it costs)
        #[arg(long)]
        encrypted: bool,
        #[command(flatten)]
        model: ModelArg,
        #[arg(long)]
        json: bool,
    },
    /// Answer quality over questions {"question", "file", "page", "evidence"} (file null:
    /// not answerable) against the current library
    Qa {
        file: PathBuf,
        /// Passages to retrieve per question
        #[arg(short, default_value_t = 6)]
        k: usize,
        /// Only retrieval and the refusal decision (no model runs)
        #[arg(long)]
        retrieval_only: bool,
        /// Judge again the answers saved by an earlier `--json` run of the same set (no
        /// model runs): measures a change to citations or verification exactly
        #[arg(long, value_name = "SAVED_JSON", conflicts_with = "retrieval_only")]
        replay: Option<PathBuf>,
        #[command(flatten)]
        model: ModelArg,
        /// Per-question results as well as the summary
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum RetrievalMode {
    Bm25,
    Dense,
    /// BM25 and dense fused by reciprocal rank
    Hybrid,
    /// Every mode (eval only)
    All,
}

impl RetrievalMode {
    fn modes(self) -> Vec<SearchMode> {
        match self {
            RetrievalMode::Bm25 => vec![SearchMode::Bm25],
            RetrievalMode::Dense => vec![SearchMode::Dense],
            RetrievalMode::Hybrid => vec![SearchMode::Hybrid],
            RetrievalMode::All => vec![SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid],
        }
    }
}

#[derive(Args)]
struct ModelArg {
    /// GGUF model file [default: $QUIRE_MODEL, else the default model in models/]
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

#[derive(Args)]
struct SamplingArgs {
    /// Most tokens to generate
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 for greedy decoding
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    repeat_penalty: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
}

impl SamplingArgs {
    fn params(&self, base: SamplingParams) -> SamplingParams {
        SamplingParams {
            max_tokens: self.max_tokens,
            temperature: self.temperature.unwrap_or(base.temperature),
            top_k: self.top_k.unwrap_or(base.top_k),
            top_p: self.top_p.unwrap_or(base.top_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(base.repeat_penalty),
            seed: self.seed.unwrap_or(base.seed),
            ..base
        }
    }
}

#[derive(Args)]
#[group(id = "input", required = true, multiple = false)]
struct PromptInput {
    /// Raw prompt text (encoded as plain text, no chat template)
    #[arg(long, group = "input")]
    prompt: Option<String>,
    /// A user message, wrapped in the model's chat template
    #[arg(long, group = "input")]
    chat: Option<String>,
    /// Prompt token ids, comma-separated
    #[arg(long, group = "input", value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArg,
    #[command(flatten)]
    input: PromptInput,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System prompt (with --chat)
    #[arg(long)]
    system: Option<String>,
    /// Print one JSON object {prompt_ids, ids, text, ...} instead of streaming text
    #[arg(long)]
    json: bool,
}

mod answer;

fn main() -> ExitCode {
    // Started as the isolated PDF reader: do that and nothing else.
    if let Some(code) = quire_engine::docs::pdf::run_worker_if_requested() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        quire_engine::runtime::set_threads(n);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = std::io::stdout().flush();
            match e.downcast_ref::<EngineError>() {
                Some(engine) => eprintln!("error: {engine}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let data_dir = paths::data_dir(cli.data_dir.as_deref());
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    match cli.command {
        Command::Model {
            command: ModelCommand::Info { model, json },
        } => model_info(model.model.as_deref(), &data_dir, json),
        Command::Tokenize {
            model,
            special,
            text,
        } => {
            let m = load(model.model.as_deref(), &data_dir)?;
            let ids = m.tokenizer().encode(&text, special)?;
            println!("{}", serde_json::to_string(&ids)?);
            Ok(())
        }
        Command::Generate(args) => generate(args, &data_dir),
        Command::Chat {
            model,
            sampling,
            system,
        } => chat(model.model.as_deref(), &data_dir, &sampling, system),
        Command::Ingest { paths, model, json } => ingest(
            &paths,
            model.model.as_deref(),
            &data_dir,
            cli.passphrase,
            json,
        ),
        Command::Docs { command } => {
            let mut lib = open_library(&data_dir, cli.passphrase)?;
            match command {
                DocsCommand::List { json } => {
                    let docs: Vec<_> = lib.documents().collect();
                    if json {
                        println!("{}", serde_json::to_string_pretty(&docs)?);
                    } else {
                        for d in docs {
                            let status = match d.status.reason() {
                                None => format!("indexed, {} pages, {} chunks", d.pages, d.chunks),
                                Some(reason) => reason.to_string(),
                            };
                            println!("{}  {}  ({status})", d.id, d.path.display());
                        }
                    }
                }
                DocsCommand::Remove { id_or_path } => {
                    if !lib.remove(&id_or_path).map_err(EngineError::from)? {
                        bail!("no document {id_or_path} in the library (see `quire docs list`)");
                    }
                }
            }
            Ok(())
        }
        Command::Search {
            query,
            k,
            mode,
            json,
        } => {
            let mode = match mode {
                RetrievalMode::Bm25 => SearchMode::Bm25,
                RetrievalMode::Dense => SearchMode::Dense,
                RetrievalMode::Hybrid => SearchMode::Hybrid,
                RetrievalMode::All => {
                    bail!("--mode all is for `quire eval`; search with bm25, dense or hybrid")
                }
            };
            let lib = open_library(&data_dir, cli.passphrase)?;
            let hits = lib.search(&query, k, mode).map_err(EngineError::from)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else {
                for h in hits {
                    println!(
                        "{:.3}  {} p.{} [{}..{}]",
                        h.score, h.title, h.page, h.span.0, h.span.1
                    );
                    let flat = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    println!("      {}", flat.chars().take(160).collect::<String>());
                }
            }
            Ok(())
        }
        Command::PdfText { file, json } => pdf_text(&file, json),
        Command::Conversations { command } => store_command(
            &data_dir,
            cli.passphrase,
            StoreCommand::Conversations(command),
        ),
        Command::Notes { command } => {
            store_command(&data_dir, cli.passphrase, StoreCommand::Notes(command))
        }
        Command::Key { command } => {
            store_command(&data_dir, cli.passphrase, StoreCommand::Key(command))
        }
        Command::Ask {
            question,
            conversation,
            k,
            model,
            json,
        } => answer::ask(answer::AskArgs {
            data_dir: &data_dir,
            passphrase: cli.passphrase,
            model: model.model.as_deref(),
            question: &question,
            conversation,
            k,
            json,
        }),
        Command::Summarize {
            target,
            model,
            json,
        } => answer::summarize(
            &data_dir,
            cli.passphrase,
            model.model.as_deref(),
            &target,
            json,
        ),
        Command::Eval {
            command:
                EvalCommand::Qa {
                    file,
                    k,
                    retrieval_only,
                    replay,
                    model,
                    json,
                },
        } => answer::eval_qa(
            &data_dir,
            cli.passphrase,
            model.model.as_deref(),
            &file,
            k,
            match (&replay, retrieval_only) {
                (Some(p), _) => answer::QaMode::Replay(p),
                (None, true) => answer::QaMode::RetrievalOnly,
                (None, false) => answer::QaMode::Answer,
            },
            json,
        ),
        Command::Eval {
            command:
                EvalCommand::Beir {
                    dir,
                    mode,
                    chunk_tokens,
                    encrypted,
                    model,
                    json,
                },
        } => eval_beir(
            &dir,
            mode,
            chunk_tokens,
            encrypted,
            model.model.as_deref(),
            &data_dir,
            json,
        ),
        Command::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            ttft_tokens,
            runs,
            attention,
            json,
        } => {
            let opts = bench::BenchOptions {
                prompt_tokens,
                gen_tokens,
                ttft_prompt_tokens: ttft_tokens,
                runs,
            };
            let load_opts = LoadOptions {
                context_size: Some(prompt_tokens.max(ttft_tokens) + gen_tokens + 16),
                attention: match attention {
                    AttentionArg::Fast => quire_engine::runtime::Attention::Fast,
                    AttentionArg::LlamaCpp => quire_engine::runtime::Attention::LlamaCpp,
                },
            };
            let mut m = quire_engine::load_model(model.model.as_deref(), &data_dir, &load_opts)?;
            let r = bench::run(&mut m, &opts, threads)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("model            {}", r.model);
                println!("threads          {}", r.threads);
                println!(
                    "prefill {:>5} t  {:.1} tokens/s",
                    r.prompt_tokens, r.prefill_tps
                );
                println!(
                    "decode  {:>5} t  {:.1} tokens/s",
                    r.gen_tokens, r.decode_tps
                );
                println!("decode @ depth   {:.1} tokens/s", r.decode_at_depth_tps);
                println!(
                    "time to first    {:.0} ms ({} prompt tokens)",
                    r.ttft_ms, r.ttft_prompt_tokens
                );
                println!("peak RSS         {:.0} MB", r.peak_rss_mb);
            }
            Ok(())
        }
    }
}

fn ingest(
    paths: &[PathBuf],
    model: Option<&Path>,
    data_dir: &Path,
    passphrase: bool,
    json: bool,
) -> Result<()> {
    use quire_engine::docs::IngestEvent;
    let counter = quire_engine::library::token_counter(model, data_dir);
    let mut lib = open_library(data_dir, passphrase)?;
    let started = std::time::Instant::now();
    let (mut total, mut done, mut part) = (0usize, 0usize, 0.0f64);
    let mut sink = |e: &IngestEvent| {
        match e {
            IngestEvent::Planned { files } => total = *files,
            IngestEvent::Finished { .. }
            | IngestEvent::Unchanged { .. }
            | IngestEvent::Failed { .. } => {
                done += 1;
                part = 0.0;
            }
            IngestEvent::Progress {
                pages_done,
                pages_total,
                ..
            } => part = *pages_done as f64 / (*pages_total).max(1) as f64,
            // Nothing new to draw.
            IngestEvent::Started { .. } => return,
            IngestEvent::Removed { .. } => {}
        }
        match e {
            IngestEvent::Failed { path, reason, .. } => {
                eprintln!("\r{}: {reason}", path.display())
            }
            IngestEvent::Finished {
                path,
                warning: Some(w),
                ..
            } => eprintln!("\rwarning {}: {w}", path.display()),
            IngestEvent::Removed { path } => eprintln!("\rremoved {}", path.display()),
            _ => {}
        }
        if total > 0 && !json {
            let elapsed = started.elapsed().as_secs_f64();
            let progress = (done as f64 + part).min(total as f64);
            let eta = if progress > 0.0 {
                format!("{:.0}s", elapsed / progress * (total as f64 - progress))
            } else {
                "?".to_string()
            };
            let filled = ((progress / total as f64) * 30.0) as usize;
            eprint!(
                "\r[{}{}] {done}/{total} files, ETA {eta} ",
                "#".repeat(filled),
                " ".repeat(30 - filled)
            );
        }
    };
    let report = lib
        .ingest(paths, counter.as_ref(), &mut sink)
        .map_err(EngineError::from)?;
    if !json {
        eprintln!();
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} added, {} updated, {} unchanged, {} removed, {} failed; {} chunks in the library\n\
             read {} pages into {} chunks in {:.1} s ({:.1} pages/s); index {:.1} MB on disk",
            report.added,
            report.updated,
            report.unchanged,
            report.removed,
            report.failed,
            lib.num_chunks(),
            report.pages,
            report.chunks,
            report.seconds,
            report.pages as f64 / report.seconds.max(1e-9),
            lib.index_bytes() as f64 / 1e6
        );
    }
    Ok(())
}

fn load(explicit: Option<&Path>, data_dir: &Path) -> Result<Model> {
    Ok(quire_engine::load_model(
        explicit,
        data_dir,
        &LoadOptions::default(),
    )?)
}

fn model_info(explicit: Option<&Path>, data_dir: &Path, json: bool) -> Result<()> {
    let path = paths::resolve_model(explicit, data_dir)?;
    let info = quire_engine::model_info(&path, true)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "unknown".into());
    println!("file            {}", info.path.display());
    if let Some(name) = &info.name {
        println!("name            {name}");
    }
    println!("architecture    {}", info.architecture);
    println!(
        "parameters      {} ({:.0}M)",
        info.parameters,
        info.parameters as f64 / 1e6
    );
    println!("quantization    {}", info.quantization);
    let types: Vec<String> = info
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{t}×{n}"))
        .collect();
    println!("tensor types    {}", types.join(", "));
    println!("context length  {}", opt(info.context_length));
    println!(
        "chat template   {}",
        if info.chat_template { "yes" } else { "no" }
    );
    println!("size            {} bytes", info.size_bytes);
    println!("sha256          {}", info.sha256.as_deref().unwrap_or("-"));
    Ok(())
}

/// Cancels the generation in flight on Ctrl-C; a second Ctrl-C with nothing running exits.
fn install_ctrlc(cancel: &CancelToken) {
    let cancel = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            std::process::exit(130);
        }
        cancel.cancel();
    });
}

fn generate(args: GenerateArgs, data_dir: &Path) -> Result<()> {
    let mut model = load(args.model.model.as_deref(), data_dir)?;
    let prompt_ids = match (&args.input.prompt, &args.input.chat, &args.input.prompt_ids) {
        (Some(text), _, _) => {
            let mut ids: Vec<u32> = model.tokenizer().bos_prefix().into_iter().collect();
            ids.extend(model.tokenizer().encode(text, false)?);
            ids
        }
        (_, Some(msg), _) => {
            let mut msgs: Vec<ChatMessage> = args.system.iter().map(ChatMessage::system).collect();
            msgs.push(ChatMessage::user(msg));
            model.encode_chat(&msgs)?
        }
        (_, _, Some(ids)) => ids.clone(),
        _ => bail!("give --prompt, --chat or --prompt-ids"),
    };
    let params = args
        .sampling
        .params(SamplingParams::greedy(args.sampling.max_tokens));
    let cancel = CancelToken::new();
    install_ctrlc(&cancel);
    let json = args.json;
    let mut stdout = std::io::stdout();
    let out = model.generate(
        &prompt_ids,
        &params,
        &cancel,
        &mut |_id: u32, text: &str| {
            if !json {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            ControlFlow::Continue(())
        },
    );
    let out = out.map_err(EngineError::from)?;
    if json {
        let v = serde_json::json!({
            "prompt_ids": out.prompt_ids,
            "ids": out.ids,
            "text": out.text,
            "stop": out.stop,
            "timings": {
                "prompt_tokens": out.timings.prompt_tokens,
                "generated_tokens": out.timings.generated_tokens,
                "prefill_ms": out.timings.prefill.as_secs_f64() * 1000.0,
                "decode_ms": out.timings.decode.as_secs_f64() * 1000.0,
            },
        });
        println!("{v}");
    } else {
        println!();
    }
    Ok(())
}

fn chat(
    explicit: Option<&Path>,
    data_dir: &Path,
    sampling: &SamplingArgs,
    system: Option<String>,
) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let mut model = load(explicit, data_dir)?;
    if interactive {
        let info = model.info();
        let name = info
            .name
            .clone()
            .unwrap_or_else(|| info.path.display().to_string());
        eprintln!("Quire — chatting with {name}, offline. /reset clears the history, /exit or Ctrl-D quits.");
    }
    let params = sampling.params(SamplingParams::chat(sampling.max_tokens));
    let mut session = ChatSession::new(system);
    let cancel = CancelToken::new();
    install_ctrlc(&cancel);
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        if interactive {
            print!("> ");
            stdout.flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).context("reading input")? == 0 {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                session.clear();
                eprintln!("(history cleared)");
                continue;
            }
            _ => {}
        }
        cancel.reset();
        let result = session.send(
            &mut model,
            line,
            &params,
            &cancel,
            &mut |_id: u32, t: &str| {
                let _ = stdout.write_all(t.as_bytes());
                let _ = stdout.flush();
                ControlFlow::Continue(())
            },
        );
        println!();
        match result {
            Ok(out) if out.stop == quire_engine::StopReason::Cancelled => eprintln!("(stopped)"),
            Ok(_) => {}
            // A prompt that does not fit is reported and the chat goes on.
            Err(
                e @ EngineError::Runtime(quire_engine::runtime::RuntimeError::ContextOverflow {
                    ..
                }),
            ) => {
                eprintln!("error: {e}")
            }
            Err(e) => return Err(e.into()),
        }
        cancel.reset();
    }
    Ok(())
}

fn pdf_text(file: &Path, json: bool) -> Result<()> {
    use quire_engine::docs::pdf;
    let exe = std::env::current_exe()?;
    let result = pdf::extract_isolated(&exe, file, &pdf::PdfLimits::default(), &mut |_, _| {});
    let status = quire_engine::docs::DocStatus::of_pdf(&result);
    let reason = status.reason().map(str::to_string);
    let (title, pages) = result.map(|t| (t.title, t.pages)).unwrap_or_default();
    if json {
        let mut v = serde_json::to_value(&status)?;
        v["reason"] = serde_json::json!(reason);
        v["title"] = serde_json::json!(title);
        v["pages"] = serde_json::to_value(&pages)?;
        println!("{v}");
    } else {
        for p in &pages {
            println!("--- page {} ---\n{}", p.number, p.text);
        }
        if let Some(r) = reason {
            bail!("{}: {r}", file.display());
        }
    }
    Ok(())
}

fn eval_beir(
    dir: &Path,
    mode: RetrievalMode,
    chunk_tokens: Option<usize>,
    encrypted: bool,
    model: Option<&Path>,
    data_dir: &Path,
    json: bool,
) -> Result<()> {
    use quire_engine::docs::beir;
    let modes = mode.modes();
    let embedder =
        if modes.iter().any(|m| *m != SearchMode::Bm25) {
            Some(quire_engine::library::embedder(data_dir)?.ok_or_else(|| {
                EngineError::from(quire_engine::docs::DocsError::NoEmbedder("dense"))
            })?)
        } else {
            None
        };
    let counter = quire_engine::library::token_counter(model, data_dir);
    let chunking = chunk_tokens.map(|n| {
        (
            quire_engine::docs::ChunkOptions {
                target_tokens: n,
                overlap_tokens: n / 5,
            },
            counter.as_ref(),
        )
    });
    let started = std::time::Instant::now();
    let mut progress = |done: usize, total: usize| {
        if !json {
            let secs = started.elapsed().as_secs_f64();
            let eta = secs / done.max(1) as f64 * (total - done) as f64;
            eprint!("\rembedding {done}/{total} chunks, ETA {eta:.0}s ");
        }
    };
    let scores = beir::evaluate(
        dir,
        beir::BeirOptions {
            modes,
            embedder: embedder.as_deref(),
            chunking,
            progress: Some(&mut progress),
            cache_dir: Some(data_dir.join("cache")),
            // A throwaway key: the benchmark measures the cost of sealing, not secrecy.
            index_key: encrypted.then_some([0x5a; 32]),
        },
    )
    .map_err(EngineError::from)?;
    if json {
        if let [one] = &scores[..] {
            println!("{}", serde_json::to_string(one)?);
        } else {
            println!("{}", serde_json::to_string(&scores)?);
        }
        return Ok(());
    }
    if embedder.is_some() {
        eprintln!();
    }
    let first = &scores[0];
    println!(
        "{} documents, {} chunks, {} queries; index {:.0} ms, embedding {:.1} s, {:.1} MB on disk",
        first.documents,
        first.chunks,
        first.queries,
        first.index_ms,
        first.embed_ms / 1000.0,
        first.index_bytes as f64 / 1e6
    );
    println!("mode     nDCG@10  Recall@100  p50 ms  p95 ms");
    for s in &scores {
        println!(
            "{:<7}  {:.4}   {:.4}      {:>6.2}  {:>6.2}",
            s.mode.name(),
            s.ndcg_at_10,
            s.recall_at_100,
            s.query_p50_ms,
            s.query_p95_ms
        );
    }
    Ok(())
}

enum StoreCommand {
    Conversations(ConversationsCommand),
    Notes(NotesCommand),
    Key(KeyCommand),
}

/// The library in the data folder, its index unsealed with the key the store holds.
fn open_library(data_dir: &Path, passphrase: bool) -> Result<quire_engine::docs::Library> {
    let key = quire_engine::store::index_key_blocking(data_dir, &key_mode(passphrase)?)?;
    Ok(quire_engine::library::open(data_dir, &key)?)
}

/// Passphrase mode when asked for (`--passphrase`) or when `QUIRE_PASSPHRASE` is set.
fn key_mode(passphrase: bool) -> Result<quire_engine::store::KeyMode> {
    use quire_engine::store::KeyMode;
    if let Some(p) = std::env::var_os("QUIRE_PASSPHRASE").filter(|p| !p.is_empty()) {
        let p = p
            .into_string()
            .map_err(|_| anyhow::anyhow!("QUIRE_PASSPHRASE is not valid UTF-8"))?;
        return Ok(KeyMode::Passphrase(zeroize::Zeroizing::new(p)));
    }
    if !passphrase {
        return Ok(KeyMode::Keychain);
    }
    if !std::io::stdin().is_terminal() {
        bail!("--passphrase needs a terminal to ask for it, or set QUIRE_PASSPHRASE");
    }
    let p = prompt_secret("Passphrase: ")?;
    if p.is_empty() {
        bail!("an empty passphrase would not protect anything");
    }
    Ok(KeyMode::Passphrase(p))
}

/// Reads a line from the terminal with echo off.
fn prompt_secret(prompt: &str) -> Result<zeroize::Zeroizing<String>> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let echo = EchoOff::new();
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line)?;
    drop(echo);
    eprintln!();
    Ok(zeroize::Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// A runtime for the store's async calls (the CLI is otherwise synchronous).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The passphrase to rotate to: $QUIRE_NEW_PASSPHRASE, else typed twice at a prompt.
fn new_passphrase() -> Result<zeroize::Zeroizing<String>> {
    if let Some(p) = std::env::var_os("QUIRE_NEW_PASSPHRASE").filter(|p| !p.is_empty()) {
        let p = p
            .into_string()
            .map_err(|_| anyhow::anyhow!("QUIRE_NEW_PASSPHRASE is not valid UTF-8"))?;
        return Ok(zeroize::Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!("the new passphrase needs a terminal to ask for it, or set QUIRE_NEW_PASSPHRASE");
    }
    let first = prompt_secret("New passphrase: ")?;
    if first.is_empty() {
        bail!("an empty passphrase would not protect anything");
    }
    if *prompt_secret("Again: ")? != *first {
        bail!("the two passphrases differ; nothing was changed");
    }
    Ok(first)
}

/// Turns terminal echo off while a passphrase is typed; restores it when dropped.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> Self {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on stdin with a termios we own.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) == 0 {
                    let saved = t;
                    t.c_lflag &= !libc::ECHO;
                    libc::tcsetattr(0, libc::TCSANOW, &t);
                    return Self { saved: Some(saved) };
                }
            }
            Self { saved: None }
        }
        #[cfg(not(unix))]
        Self {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(t) = self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

fn store_command(data_dir: &Path, passphrase: bool, cmd: StoreCommand) -> Result<()> {
    let mode = key_mode(passphrase)?;
    let mode_name = mode.name();
    let rt = runtime()?;
    if let StoreCommand::Key(KeyCommand::Rotate {
        to_passphrase,
        to_keychain,
    }) = cmd
    {
        let to_pass = to_passphrase
            || (!to_keychain && matches!(mode, quire_engine::store::KeyMode::Passphrase(_)));
        let to = if to_pass {
            quire_engine::store_types::NewKey::Passphrase(new_passphrase()?)
        } else {
            quire_engine::store_types::NewKey::Keychain
        };
        let new_mode = if to_pass { "passphrase" } else { "keychain" };
        rt.block_on(quire_engine::store::rotate(data_dir, &mode, to))?;
        println!("rotated: the store and the search index are now under a new {new_mode} key");
        return Ok(());
    }
    rt.block_on(async move {
        let store = quire_engine::store::open(data_dir, &mode).await?;
        let result = run_store_command(&store, cmd, mode_name).await;
        store.close().await;
        result
    })
}

async fn run_store_command(
    store: &quire_engine::store_types::Store,
    cmd: StoreCommand,
    mode_name: &str,
) -> Result<()> {
    use quire_engine::store_types::NoteEdit;
    let e = |e: quire_engine::store_types::StoreError| EngineError::from(e);
    match cmd {
        StoreCommand::Conversations(c) => match c {
            ConversationsCommand::List { json } => {
                let list = store.list_conversations().await.map_err(e)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    for c in list {
                        println!("{:>5}  {}  ({})", c.id, c.title, c.model);
                    }
                }
            }
            ConversationsCommand::Show { id } => {
                let Some(c) = store.get_conversation(id).await.map_err(e)? else {
                    bail!("no conversation {id} (see `quire conversations list`)");
                };
                println!("# {}", c.title);
                for m in store.messages(id).await.map_err(e)? {
                    println!("\n[{}]\n{}", m.role.as_str(), m.text);
                }
            }
            ConversationsCommand::Export { id, out } => {
                let md = store.export_markdown(id).await.map_err(e)?;
                match out {
                    Some(path) => std::fs::write(&path, md)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => print!("{md}"),
                }
            }
            ConversationsCommand::Search { query, json } => {
                let hits = store.search_conversations(&query).await.map_err(e)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&hits)?);
                } else {
                    for h in hits {
                        println!(
                            "{:>5}  {}: {}",
                            h.conversation.id, h.conversation.title, h.snippet
                        );
                    }
                }
            }
            ConversationsCommand::Rename { id, title } => {
                store.rename_conversation(id, &title).await.map_err(e)?
            }
            ConversationsCommand::Delete { id } => {
                store.delete_conversation(id).await.map_err(e)?
            }
        },
        StoreCommand::Notes(n) => match n {
            NotesCommand::Add { title, body, tags } => {
                let body = if body == "-" {
                    let mut b = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut b)?;
                    b
                } else {
                    body
                };
                let note = store.add_note(&title, &body, &tags).await.map_err(e)?;
                println!("{}", note.id);
            }
            NotesCommand::List { json } => {
                let notes = store.list_notes().await.map_err(e)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&notes)?);
                } else {
                    for n in notes {
                        println!("{:>5}  {}  [{}]", n.id, n.title, n.tags.join(", "));
                    }
                }
            }
            NotesCommand::Show { id } => {
                let Some(n) = store.get_note(id).await.map_err(e)? else {
                    bail!("no note {id} (see `quire notes list`)");
                };
                println!("# {}\n\n{}", n.title, n.body);
            }
            NotesCommand::Edit {
                id,
                title,
                body,
                tags,
            } => {
                store
                    .edit_note(id, &NoteEdit { title, body, tags })
                    .await
                    .map_err(e)?;
            }
            NotesCommand::Delete { id } => store.delete_note(id).await.map_err(e)?,
        },
        StoreCommand::Key(KeyCommand::Rotate { .. }) => unreachable!("handled before opening"),
        StoreCommand::Key(KeyCommand::Status) => {
            println!("key        {mode_name}");
            println!("database   {}", store.path().display());
            println!("cipher     SQLCipher {}", store.cipher_version());
            println!("status     opens with this key");
        }
    }
    Ok(())
}
