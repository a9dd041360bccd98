//! PDF extraction in a child process.
//!
//! The front door (the `quire` CLI, the desktop app) calls [`run_worker_if_requested`]
//! first thing in `main`; when started with [`WORKER_ARG`] it becomes the worker: it
//! limits its own memory and CPU time (and turns core dumps off), extracts one file and
//! writes JSON lines to stdout. The parent reads them as they come (page progress), and
//! kills the worker when it runs past the wall-clock limit or writes too much. A crash,
//! an out-of-memory abort or a hang costs one file, never the ingest.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{collect, extract_each, PdfEvent, PdfLimits, PdfProblem, PdfText};

/// The first argument that turns a Quire executable into the PDF worker.
pub const WORKER_ARG: &str = "--quire-pdf-worker";

#[derive(Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum Msg {
    Event(PdfEvent),
    Done,
    Problem(PdfProblem),
}

/// Call first thing in `main`: returns `Some(exit code)` when this process was started
/// as the PDF worker (the caller exits with it), `None` otherwise.
pub fn run_worker_if_requested() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(WORKER_ARG) {
        return None;
    }
    Some(worker(&args[2..]))
}

fn worker(args: &[String]) -> i32 {
    let (Some(path), Some(limits)) = (args.first(), args.get(1)) else {
        eprintln!("usage: {WORKER_ARG} FILE LIMITS");
        return 2;
    };
    let Some(limits) = decode_limits(limits) else {
        eprintln!("bad limits");
        return 2;
    };
    limit_self(&limits);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut send = |m: &Msg| {
        // A closed pipe means the parent gave up on us: stop quietly.
        let ok = serde_json::to_writer(&mut out, m).is_ok()
            && out.write_all(b"\n").is_ok()
            && out.flush().is_ok();
        if !ok {
            std::process::exit(3);
        }
    };
    let result = extract_each(Path::new(path), &limits, &mut |e| send(&Msg::Event(e)));
    match result {
        Ok(()) => send(&Msg::Done),
        Err(p) => send(&Msg::Problem(p)),
    }
    0
}

fn encode_limits(l: &PdfLimits) -> String {
    format!(
        "{},{},{},{},{},{},{}",
        l.max_file_bytes,
        l.max_stream_bytes,
        l.max_pages,
        l.max_text_bytes,
        l.memory_bytes,
        l.cpu_seconds,
        l.wall.as_secs()
    )
}

fn decode_limits(s: &str) -> Option<PdfLimits> {
    let v: Vec<u64> = s
        .split(',')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [file, stream, pages, text, mem, cpu, wall] = v[..] else {
        return None;
    };
    Some(PdfLimits {
        max_file_bytes: file,
        max_stream_bytes: stream as usize,
        max_pages: pages as usize,
        max_text_bytes: text as usize,
        memory_bytes: mem,
        cpu_seconds: cpu,
        wall: std::time::Duration::from_secs(wall),
    })
}

#[cfg(unix)]
fn limit_self(l: &PdfLimits) {
    let set = |res, soft: u64, hard: u64| {
        let lim = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        unsafe { libc::setrlimit(res, &lim) };
    };
    set(libc::RLIMIT_AS, l.memory_bytes, l.memory_bytes);
    set(libc::RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 5);
    set(libc::RLIMIT_CORE, 0, 0);
    // Die with the parent: a killed ingest leaves no reader behind.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn limit_self(_: &PdfLimits) {}

/// Extracts `path` in a child process started as `exe WORKER_ARG ...`, calling
/// `progress(done, total)` after each page.
pub fn extract_isolated(
    exe: &Path,
    path: &Path,
    limits: &PdfLimits,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PdfText, PdfProblem> {
    let mut child = Command::new(exe)
        .arg(WORKER_ARG)
        .arg(path)
        .arg(encode_limits(limits))
        // One file at a time needs no thread pool of its own beside the ingest's.
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            PdfProblem::Crashed(format!(
                "could not start the PDF reader {}: {e}",
                exe.display()
            ))
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<std::io::Result<String>>();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match lines.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.send(Ok(line)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.by_ref().take(64 * 1024).read_to_end(&mut buf);
        // Drain the rest so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&buf).into_owned()
    });

    let deadline = Instant::now() + limits.wall;
    let mut out = PdfText::default();
    let mut received = 0usize;
    let mut outcome: Option<Result<(), PdfProblem>> = None;
    while outcome.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(line)) => {
                received += line.len();
                if received > limits.max_text_bytes + (1 << 20) {
                    outcome = Some(Err(PdfProblem::TooLarge(format!(
                        "more than {} MiB of text",
                        limits.max_text_bytes >> 20
                    ))));
                    break;
                }
                match serde_json::from_str::<Msg>(&line) {
                    Ok(Msg::Event(e)) => {
                        collect(&mut out, e);
                        progress(out.pages.len(), out.total_pages);
                    }
                    Ok(Msg::Done) => outcome = Some(Ok(())),
                    Ok(Msg::Problem(p)) => outcome = Some(Err(p)),
                    Err(e) => {
                        outcome = Some(Err(PdfProblem::Crashed(format!(
                            "unreadable reply from the PDF reader: {e}"
                        ))))
                    }
                }
            }
            Ok(Err(e)) => outcome = Some(Err(PdfProblem::Crashed(e.to_string()))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                outcome = Some(Err(PdfProblem::TimedOut(limits.wall.as_secs())))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Anything but a clean finish (a problem, a timeout, too much output, a crash):
    // make sure the worker is gone.
    if !matches!(outcome, Some(Ok(()))) {
        let _ = child.kill();
    }
    let status = child.wait();
    drop(rx);
    let _ = reader.join();
    let stderr_text = errors.join().unwrap_or_default();
    match outcome {
        Some(Ok(())) => Ok(out),
        Some(Err(p)) => Err(p),
        None => Err(crash_problem(status.ok(), &stderr_text, limits)),
    }
}

/// Why the worker died without a final message.
fn crash_problem(
    status: Option<std::process::ExitStatus>,
    stderr: &str,
    limits: &PdfLimits,
) -> PdfProblem {
    // Under the address-space limit, running out shows as a failed allocation, or as a
    // thread (its stack) that cannot be created: ENOMEM (12) or EAGAIN (11).
    let out_of_memory = [
        "memory allocation",
        "out of memory",
        "Cannot allocate memory",
        "os error 12",
        "os error 11",
        "Resource temporarily unavailable",
    ]
    .iter()
    .any(|m| stderr.contains(m));
    if out_of_memory {
        return super::out_of_memory(limits);
    }
    if stderr.contains("overflowed its stack") {
        return PdfProblem::Corrupt("its objects are nested too deeply".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.and_then(|s| s.signal()) {
            if sig == libc::SIGXCPU {
                return PdfProblem::TimedOut(limits.cpu_seconds);
            }
            return PdfProblem::Crashed(format!("signal {sig}"));
        }
    }
    let code = status
        .and_then(|s| s.code())
        .map_or("unknown".to_string(), |c| c.to_string());
    let last = stderr.lines().last().unwrap_or("").trim();
    PdfProblem::Crashed(if last.is_empty() {
        format!("exit code {code}")
    } else {
        format!("exit code {code}: {last}")
    })
}
