#!/usr/bin/env python3
"""Compare Quire's PDF text extraction with poppler's `pdftotext -layout`, page by page.

    scripts/pdf-vs-pdftotext.py [FOLDER] [--quire PATH] [--runs N] [--per-file] [--json]

FOLDER defaults to <repo>/../shared/corpus/papers; every *.pdf in it is used. --quire
defaults to $CARGO_TARGET_DIR/release/quire, else <repo>/target/release/quire, and is run
as `quire pdf-text FILE --json`, which prints {"status", "reason", "pages": [{"number",
"text"}]}. The reference is ONE `pdftotext -layout FILE -` per file, split into pages on
form feeds. Not part of the test suite; needs poppler-utils, standard library only.

Metric, per page: token F1 after NFKC + lowercase, tokens = runs of \\w (minus "_"),
multiset overlap; P = overlap/quire tokens, R = overlap/ref tokens. Pages empty on both
sides are left out of the means (counted apart); one side empty gives 0. A page missing
on one side (page-count mismatch, or a status other than "indexed") counts as empty.
"F1 dehyph" first rejoins `word-\\n word` in the reference (Quire joins hyphenated line
ends); with -layout this misses left-column hyphens of two-column pages.

Timing: each tool is run --runs times per file (process start included, perf_counter
around subprocess.run); the median per file is summed over the files where pdftotext
worked and quire's status is not "failed". Pages/s for BOTH tools is the reference page
total of those files over that tool's summed medians, so the speed ratio is a time ratio.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, time, unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HYPHEN = re.compile(r"(\w)-\n\s*(\w)")


def tokens(text):
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower().replace("_", " "))


def f1(quire_text, ref_text):
    """(f1 or None when both sides have no tokens, quire token count, ref token count)."""
    q, r = Counter(tokens(quire_text)), Counter(tokens(ref_text))
    nq, nr = sum(q.values()), sum(r.values())
    if nq == 0 and nr == 0:
        return None, 0, 0
    overlap = sum((q & r).values())
    if overlap == 0:
        return 0.0, nq, nr
    p, rc = overlap / nq, overlap / nr
    return 2 * p * rc / (p + rc), nq, nr


def timed(cmd, runs):
    """Run cmd `runs` times; return (median seconds, CompletedProcess of the first run)."""
    times, first = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
        times.append(time.perf_counter() - t0)
        first = first or proc
    return statistics.median(times), first


def quire_pages(proc):
    """(status, reason, [page texts in page order]) from `quire pdf-text --json`."""
    if proc.returncode != 0 and not proc.stdout.strip():
        err = " | ".join(l for l in proc.stderr.decode(errors="replace").splitlines()[:2] if l.strip())
        return "failed", f"exit {proc.returncode}: {err[:150]}", []
    try:
        doc = json.loads(proc.stdout)
    except ValueError as e:
        return "failed", f"bad JSON on stdout: {e}", []
    pages = sorted(doc.get("pages") or [], key=lambda p: p["number"])
    texts = [""] * (pages[-1]["number"] if pages else 0)
    for p in pages:
        texts[p["number"] - 1] = p.get("text") or ""
    return doc.get("status", "failed"), doc.get("reason"), texts


def ref_pages(stdout):
    pages = stdout.decode("utf-8", errors="replace").split("\f")
    return pages[:-1] if pages and pages[-1] == "" else pages


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def num(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/corpus/papers"))
    target = Path(os.environ["CARGO_TARGET_DIR"]) if os.environ.get("CARGO_TARGET_DIR") else ROOT / "target"
    ap.add_argument("--quire", default=str(target / "release/quire"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--per-file", action="store_true", help="also print a table per file")
    ap.add_argument("--json", action="store_true", help="print a JSON summary instead")
    a = ap.parse_args()
    if shutil.which("pdftotext") is None:
        sys.exit("pdf-vs-pdftotext: pdftotext not found; install it with `apt-get install poppler-utils`")
    if not (os.path.isfile(a.quire) and os.access(a.quire, os.X_OK)):
        sys.exit(f"pdf-vs-pdftotext: no quire binary at {a.quire} (build it, or pass --quire PATH)")
    pdfs = sorted(Path(a.folder).glob("*.pdf"))
    if not pdfs or a.runs < 1:
        sys.exit(f"pdf-vs-pdftotext: no *.pdf in {a.folder}" if not pdfs else "--runs must be >= 1")

    files, pages = [], []
    for pdf in pdfs:
        print(f"  {pdf.name}", file=sys.stderr)
        t_ref, ref = timed(["pdftotext", "-layout", str(pdf), "-"], a.runs)
        t_q, qp = timed([a.quire, "pdf-text", str(pdf), "--json"], a.runs)
        status, reason, qtexts = quire_pages(qp)
        rtexts = ref_pages(ref.stdout) if ref.returncode == 0 else None
        f = {"file": pdf.name, "status": status, "reason": reason, "quire_pages": len(qtexts),
             "ref_pages": len(rtexts) if rtexts is not None else None,
             "quire_s": t_q, "ref_s": t_ref, "f1": [], "f1_dehyph": [], "empty_pages": 0}
        files.append(f)
        if rtexts is None:
            f["reason"] = f"pdftotext exit {ref.returncode}; file left out of F1"
            continue
        for i in range(max(len(qtexts), len(rtexts))):
            q = qtexts[i] if i < len(qtexts) else ""
            r = rtexts[i] if i < len(rtexts) else ""
            score, nq, nr = f1(q, r)
            if score is None:
                f["empty_pages"] += 1
                continue
            score_d = f1(q, HYPHEN.sub(r"\1\2", r))[0]
            f["f1"].append(score)
            f["f1_dehyph"].append(score_d)
            pages.append({"file": pdf.name, "page": i + 1, "f1": score, "f1_dehyph": score_d,
                          "quire_tokens": nq, "ref_tokens": nr})

    timed_files = [f for f in files if f["ref_pages"] is not None and f["status"] != "failed"]
    total_pages = sum(f["ref_pages"] for f in timed_files)
    t_q, t_ref = sum(f["quire_s"] for f in timed_files), sum(f["ref_s"] for f in timed_files)
    summary = {
        "folder": a.folder, "quire": a.quire, "runs": a.runs, "files": len(files),
        "total_pages_ref": sum(f["ref_pages"] or 0 for f in files),
        "total_pages_quire": sum(f["quire_pages"] for f in files),
        "timed_files": len(timed_files), "timed_pages": total_pages,
        "scored_pages": len(pages), "empty_both_pages": sum(f["empty_pages"] for f in files),
        "mean_page_f1": mean([p["f1"] for p in pages]),
        "mean_page_f1_dehyph": mean([p["f1_dehyph"] for p in pages]),
        "mean_file_f1": mean([mean(f["f1"]) for f in files if f["f1"]]),
        "mean_file_f1_dehyph": mean([mean(f["f1_dehyph"]) for f in files if f["f1_dehyph"]]),
        "quire_seconds": t_q, "pdftotext_seconds": t_ref,
        "quire_pages_per_s": total_pages / t_q if t_q else None,
        "pdftotext_pages_per_s": total_pages / t_ref if t_ref else None,
        "speed_ratio_quire_over_pdftotext": t_ref / t_q if t_q else None,
        "page_count_mismatches": [{"file": f["file"], "quire": f["quire_pages"], "ref": f["ref_pages"]}
                                  for f in files if f["ref_pages"] is not None
                                  and f["quire_pages"] != f["ref_pages"]],
        "not_indexed": [{"file": f["file"], "status": f["status"], "reason": f["reason"]}
                        for f in files if f["status"] != "indexed" or f["ref_pages"] is None],
        "worst_pages": sorted(pages, key=lambda p: p["f1"])[:5],
        "per_file": [{k: (mean(v) if k.startswith("f1") else v) for k, v in f.items()} for f in files],
    }
    if a.json:
        print(json.dumps(summary, indent=2))
        return
    s = summary
    if a.per_file:
        print(f"{'file':<60} {'status':<13} {'pages q/ref':>11} {'F1':>6} {'F1 dh':>6} {'quire s':>8} {'pdftt s':>8}")
        for f in s["per_file"]:
            counts = f"{f['quire_pages']}/{'-' if f['ref_pages'] is None else f['ref_pages']}"
            print(f"{f['file'][:60]:<60} {f['status'][:13]:<13} {counts:>11}"
                  f" {num(f['f1'], '6.3f'):>6} {num(f['f1_dehyph'], '6.3f'):>6} {f['quire_s']:8.3f} {f['ref_s']:8.3f}")
        print()
    print(f"files {s['files']}, pages {s['total_pages_ref']} (pdftotext) / {s['total_pages_quire']} (quire), "
          f"scored {s['scored_pages']}, empty on both sides {s['empty_both_pages']}, runs {a.runs}")
    print(f"mean page F1                 {num(s['mean_page_f1'])}")
    print(f"mean page F1 (dehyphen. ref) {num(s['mean_page_f1_dehyph'])}")
    print(f"mean file F1                 {num(s['mean_file_f1'])}")
    print(f"mean file F1 (dehyphen. ref) {num(s['mean_file_f1_dehyph'])}")
    if t_q and t_ref:
        print(f"speed over {len(timed_files)} files, {total_pages} pages: quire "
              f"{s['quire_pages_per_s']:.1f} pages/s ({t_q:.3f} s), pdftotext -layout "
              f"{s['pdftotext_pages_per_s']:.1f} pages/s ({t_ref:.3f} s), "
              f"quire/pdftotext {s['speed_ratio_quire_over_pdftotext']:.2f}x")
    else:
        print("speed: no file worked on both sides")
    for m in s["page_count_mismatches"]:
        print(f"page-count mismatch: {m['file']}: quire {m['quire']}, pdftotext {m['ref']}")
    for m in s["not_indexed"]:
        print(f"not scored/indexed: {m['file']}: {m['status']} ({m['reason']})")
    print("worst pages:")
    for p in s["worst_pages"]:
        print(f"  {p['file'][:60]:<60} p{p['page']:<4} F1 {p['f1']:.3f} (dehyph {p['f1_dehyph']:.3f})"
              f"  tokens quire {p['quire_tokens']}, ref {p['ref_tokens']}")


if __name__ == "__main__":
    main()
