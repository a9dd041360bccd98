#!/usr/bin/env python3
"""Check the corpus question-answering evaluation set (stdlib only).

Usage:
    scripts/check-qa-set.py --quire target/release/quire \
        --corpus /work/shared/corpus tests/data/qa/corpus-qa.jsonl

For every answerable line (non-null "file") the checker verifies that
"evidence" occurs, after collapsing runs of whitespace to one space
(case-sensitive), in the text of page "page" as reported by
`quire pdf-text FILE --json` (PDFs) or in the raw file text (notes, which
are a single page, page 1). Unanswerable lines must have "file", "page"
and "evidence" all null. It also checks the minimum number of lines and of
unanswerable lines. Exit status is 0 when everything passes, 1 otherwise.
"""
import argparse
import json
import os
import re
import subprocess
import sys

KEYS = {"question", "file", "page", "evidence"}


def collapse(s):
    return re.sub(r"\s+", " ", s).strip()


def load_pages(quire, corpus, rel, cache):
    """Return {page_number: collapsed_text} for a corpus file, or raise."""
    if rel in cache:
        return cache[rel]
    path = os.path.join(corpus, rel)
    if not os.path.isfile(path):
        raise RuntimeError(f"file not found: {path}")
    if rel.lower().endswith(".pdf"):
        proc = subprocess.run(
            [quire, "pdf-text", path, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"quire pdf-text failed ({proc.returncode}) for {rel}: "
                + proc.stderr.decode("utf-8", "replace")[-500:]
            )
        doc = json.loads(proc.stdout.decode("utf-8"))
        pages = {int(p["number"]): collapse(p.get("text") or "")
                 for p in doc.get("pages", [])}
        if not pages:
            raise RuntimeError(
                f"no pages extracted for {rel} (status={doc.get('status')!r}, "
                f"reason={doc.get('reason')!r})"
            )
    else:
        with open(path, encoding="utf-8") as fh:
            pages = {1: collapse(fh.read())}
    cache[rel] = pages
    return pages


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quire", required=True, help="path to the quire binary")
    ap.add_argument("--corpus", required=True,
                    help="corpus root; 'file' fields are relative to it")
    ap.add_argument("--min-lines", type=int, default=40)
    ap.add_argument("--min-unanswerable", type=int, default=10)
    ap.add_argument("jsonl", help="the QA set (JSON Lines)")
    args = ap.parse_args()

    errors = []
    rows = []
    with open(args.jsonl, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"line {lineno}: invalid JSON: {e}")
                continue
            rows.append((lineno, row))

    cache = {}
    answerable = unanswerable = 0
    files = set()
    for lineno, row in rows:
        where = f"line {lineno}"
        if not isinstance(row, dict) or set(row) != KEYS:
            errors.append(f"{where}: keys must be exactly {sorted(KEYS)}")
            continue
        q, rel, page, ev = row["question"], row["file"], row["page"], row["evidence"]
        if not isinstance(q, str) or not q.strip():
            errors.append(f"{where}: question must be a non-empty string")
        if rel is None:
            if page is not None or ev is not None:
                errors.append(f"{where}: unanswerable line needs page and evidence null")
            unanswerable += 1
            continue
        answerable += 1
        if not isinstance(rel, str) or not isinstance(page, int) or isinstance(page, bool) \
                or not isinstance(ev, str) or not ev.strip():
            errors.append(f"{where}: answerable line needs str file, int page, str evidence")
            continue
        files.add(rel)
        try:
            pages = load_pages(args.quire, args.corpus, rel, cache)
        except (RuntimeError, ValueError, OSError) as e:
            errors.append(f"{where}: {e}")
            continue
        if page not in pages:
            errors.append(f"{where}: {rel} has no page {page} (pages 1..{max(pages)})")
            continue
        needle = collapse(ev)
        if needle not in pages[page]:
            found = [n for n, t in sorted(pages.items()) if needle in t]
            hint = f" (found on page(s) {found})" if found else " (not found on any page)"
            errors.append(f"{where}: evidence not on {rel} page {page}{hint}: {ev[:80]!r}")

    total = answerable + unanswerable
    if total < args.min_lines:
        errors.append(f"only {total} lines, need >= {args.min_lines}")
    if unanswerable < args.min_unanswerable:
        errors.append(f"only {unanswerable} unanswerable lines, need >= {args.min_unanswerable}")

    papers = sum(1 for f in files if f.startswith("papers/"))
    notes = sum(1 for f in files if f.startswith("notes/"))
    print(f"{total} lines: {answerable} answerable ({papers} papers, {notes} notes), "
          f"{unanswerable} unanswerable")
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
