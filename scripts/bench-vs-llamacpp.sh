#!/usr/bin/env bash
# Side-by-side benchmark: `quire bench` against llama.cpp's `llama-bench` on the same GGUF
# models, thread counts and token counts. Not part of the test suite.
#
#   scripts/bench-vs-llamacpp.sh [--model PATH]... [--threads "1 2"] [--runs 3]
#                                [--prompt-tokens 512] [--gen-tokens 128]
#                                [--ttft-tokens 1000]
#
# llama-bench is built once (CPU only) from the llama.cpp vendored in the
# llama-cpp-python==0.3.36 source package, under ${QUIRE_BENCH_DIR:-<repo>/.bench}.
# Runs alternate quire, llama.cpp, quire, llama.cpp, ... and the medians are printed
# as a Markdown table. Peak RSS of llama.cpp is that of the whole llama-bench process.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="${QUIRE_BENCH_DIR:-$root/.bench}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

LLAMA_PY_VERSION=0.3.36
SMOL="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
QWEN="$root/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

models=()
threads="1 2"
runs=3
prompt_tokens=512
gen_tokens=128
ttft_tokens=1000

usage() { sed -n 2,11p "$0"; }
need_arg() { [ "$#" -ge 2 ] || { echo "bench-vs-llamacpp: $1 needs a value" >&2; exit 2; }; }

cmdline="$0"
for a in "$@"; do cmdline+=" $(printf '%q' "$a")"; done

while [ "$#" -gt 0 ]; do
  case "$1" in
    --model) need_arg "$@"; models+=("$2"); shift 2 ;;
    --threads) need_arg "$@"; threads="$2"; shift 2 ;;
    --runs) need_arg "$@"; runs="$2"; shift 2 ;;
    --prompt-tokens) need_arg "$@"; prompt_tokens="$2"; shift 2 ;;
    --gen-tokens) need_arg "$@"; gen_tokens="$2"; shift 2 ;;
    --ttft-tokens) need_arg "$@"; ttft_tokens="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-vs-llamacpp: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

read -ra thread_list <<<"$threads"
[ "${#thread_list[@]}" -gt 0 ] || { echo "bench-vs-llamacpp: --threads is empty" >&2; exit 2; }
for n in "$runs" "$prompt_tokens" "$gen_tokens" "$ttft_tokens" "${thread_list[@]}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench-vs-llamacpp: not a positive integer: $n" >&2; exit 2; }
done

echo "Command: $cmdline"
echo

if [ "${#models[@]}" -eq 0 ]; then
  models=("$SMOL" "$QWEN")
  if [ ! -f "$SMOL" ] || [ ! -f "$QWEN" ]; then
    "$root/scripts/fetch-models.sh" --all
  fi
fi
for m in "${models[@]}"; do
  [ -f "$m" ] || { echo "bench-vs-llamacpp: model not found: $m" >&2; exit 1; }
done

log() { echo "bench-vs-llamacpp: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() { # package
  log "installing $1 with apt-get"
  as_root apt-get install -y "$1" >&2 || {
    as_root apt-get update >&2 && as_root apt-get install -y "$1" >&2
  }
}

# ---------------------------------------------------------------- llama-bench

llama_src_root="$bench_dir/llama_cpp_python-$LLAMA_PY_VERSION"
llama_src="$llama_src_root/vendor/llama.cpp"
llama_build="$bench_dir/llama-build-$LLAMA_PY_VERSION"

find_llama_bench() {
  [ -d "$llama_build" ] || return 0
  find "$llama_build" -type f -name llama-bench -perm -u+x 2>/dev/null | head -n 1
}

build_llama_bench() {
  mkdir -p "$bench_dir"
  if [ ! -f "$llama_src/CMakeLists.txt" ]; then
    local dl="$bench_dir/dl" sdist
    sdist="$(find "$dl" -maxdepth 1 -name "llama_cpp_python-$LLAMA_PY_VERSION.tar.gz" 2>/dev/null | head -n 1)"
    if [ -z "$sdist" ]; then
      log "downloading llama-cpp-python==$LLAMA_PY_VERSION source package"
      # --no-binary for this package only: with :all: pip would also compile the build
      # backend's own dependencies (cmake, ninja) from source just to read the metadata.
      python3 -m pip download --no-deps --disable-pip-version-check \
        --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_PY_VERSION" -d "$dl" >&2
      sdist="$(find "$dl" -maxdepth 1 -name "llama_cpp_python-$LLAMA_PY_VERSION.tar.gz" | head -n 1)"
      [ -n "$sdist" ] || { log "no sdist found in $dl"; exit 1; }
    fi
    log "extracting $(basename "$sdist")"
    tar -xzf "$sdist" -C "$bench_dir"
    [ -f "$llama_src/CMakeLists.txt" ] || { log "no vendor/llama.cpp in $sdist"; exit 1; }
  fi

  command -v cmake >/dev/null 2>&1 || apt_install cmake

  # Only pass options this llama.cpp version declares (LLAMA_CURL, for one, is deprecated
  # in 0.3.36's vendored copy and only warns).
  local wanted=(
    CMAKE_BUILD_TYPE=Release
    GGML_NATIVE=ON
    LLAMA_CURL=OFF
    GGML_OPENMP=OFF
    LLAMA_BUILD_TESTS=OFF
    LLAMA_BUILD_EXAMPLES=OFF
    LLAMA_BUILD_SERVER=OFF
    LLAMA_BUILD_TOOLS=ON
    LLAMA_BUILD_APP=OFF
    LLAMA_OPENSSL=OFF
    LLAMA_LLGUIDANCE=OFF
    GGML_CPU_KLEIDIAI=OFF
    BUILD_SHARED_LIBS=OFF
  )
  local opts=() kv name
  for kv in "${wanted[@]}"; do
    name="${kv%%=*}"
    if [ "$name" = CMAKE_BUILD_TYPE ] ||
       grep -rqs --include=CMakeLists.txt "option(${name}[[:space:]]" "$llama_src" ||
       grep -rqs --include=CMakeLists.txt "option(${name})" "$llama_src"; then
      opts+=("-D$kv")
    else
      log "skipping -D$kv: not an option of this llama.cpp"
    fi
  done

  log "configuring llama.cpp (CPU only): ${opts[*]}"
  # FETCHCONTENT_FULLY_DISCONNECTED: nothing may be downloaded at build time.
  cmake -S "$llama_src" -B "$llama_build" -DFETCHCONTENT_FULLY_DISCONNECTED=ON "${opts[@]}" >&2
  log "building llama-bench"
  cmake --build "$llama_build" --target llama-bench -j"$(nproc)" >&2
}

llama_bench="$(find_llama_bench)"
if [ -z "$llama_bench" ]; then
  build_llama_bench
  llama_bench="$(find_llama_bench)"
  [ -n "$llama_bench" ] || { log "llama-bench was not built under $llama_build"; exit 1; }
fi
log "llama-bench: $llama_bench"

llama_help="$("$llama_bench" --help 2>&1 || true)"
has_depth=0
if grep -q -- '--n-depth' <<<"$llama_help"; then has_depth=1; fi

# ---------------------------------------------------------------- quire

log "building quire (cargo build --release -p quire-cli)"
(cd "$root" && cargo build --release -p quire-cli >&2)
quire="$target_dir/release/quire"
[ -x "$quire" ] || { log "quire binary not found at $quire"; exit 1; }

# ---------------------------------------------------------------- peak RSS

time_bin=""
if [ ! -x /usr/bin/time ]; then
  apt_install time || true
fi
if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
  time_bin=/usr/bin/time
else
  log "/usr/bin/time -v unavailable; llama.cpp peak RSS will read n/a"
fi

# ---------------------------------------------------------------- runs

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"

# Appends {"model","threads","tool","run", metrics...} to $results.
record_quire() { # model threads run
  local out="$work/quire.json"
  "$quire" bench --model "$1" --threads "$2" --prompt-tokens "$prompt_tokens" \
    --gen-tokens "$gen_tokens" --ttft-tokens "$ttft_tokens" --runs 1 --json >"$out" 2>"$work/quire.err" || {
    log "quire bench failed:"; cat "$work/quire.err" >&2; exit 1; }
  python3 - "$out" "$1" "$2" "$3" >>"$results" <<'PY'
import json, sys
path, model, threads, run = sys.argv[1:]
obj = None
for line in open(path):
    line = line.strip()
    if line.startswith("{"):
        obj = json.loads(line)
if obj is None:
    sys.exit("quire bench printed no JSON object")
row = {"model": model, "threads": int(threads), "tool": "quire", "run": int(run)}
for k in ("prefill_tps", "decode_tps", "decode_at_depth_tps", "ttft_ms", "peak_rss_mb"):
    row[k] = obj.get(k)
print(json.dumps(row))
PY
}

# Runs llama-bench, JSON to $2, peak RSS (kB) to $2.rss when /usr/bin/time is there.
run_llama() { # out-json args...
  local out="$1"; shift
  if [ -n "$time_bin" ]; then
    "$time_bin" -v -o "$out.time" "$llama_bench" "$@" >"$out" 2>"$out.err" || {
      log "llama-bench failed:"; cat "$out.err" "$out.time" >&2; exit 1; }
    awk -F': *' '/Maximum resident set size/ {print $2}' "$out.time" >"$out.rss"
  else
    "$llama_bench" "$@" >"$out" 2>"$out.err" || {
      log "llama-bench failed:"; cat "$out.err" >&2; exit 1; }
    : >"$out.rss"
  fi
}

record_llama() { # model threads run
  local base="$work/llama.json" depth="$work/llama-depth.json"
  run_llama "$base" -m "$1" -t "$2" -p "$prompt_tokens,$ttft_tokens" -n "$gen_tokens" -r 1 -o json
  rm -f "$depth" "$depth.rss"
  if [ "$has_depth" = 1 ]; then
    run_llama "$depth" -m "$1" -t "$2" -p 0 -n "$gen_tokens" -d "$prompt_tokens" -r 1 -o json
  fi
  python3 - "$base" "$depth" "$prompt_tokens" "$gen_tokens" "$ttft_tokens" "$1" "$2" "$3" >>"$results" <<'PY'
import json, os, sys
base, depth, P, G, T, model, threads, run = sys.argv[1:]
P, G, T = int(P), int(G), int(T)

def rows(path):
    if not os.path.exists(path):
        return []
    text = open(path).read()
    start = text.find("[")
    return json.loads(text[start:]) if start >= 0 else []

def rss_mb(path):
    try:
        s = open(path + ".rss").read().strip()
        return int(s) / 1024.0 if s else None
    except OSError:
        return None

def pick(rs, n_prompt, n_gen, n_depth):
    for r in rs:
        if (r.get("n_prompt"), r.get("n_gen"), r.get("n_depth", 0)) == (n_prompt, n_gen, n_depth):
            return r.get("avg_ts")
    return None

b, d = rows(base), rows(depth)
rss = [x for x in (rss_mb(base), rss_mb(depth)) if x is not None]
row = {
    "model": model, "threads": int(threads), "tool": "llama", "run": int(run),
    "prefill_tps": pick(b, P, 0, 0),
    "decode_tps": pick(b, 0, G, 0),
    "decode_at_depth_tps": pick(d, 0, G, P) if d else None,
    # llama-bench times the prompt alone: its TTFT is the prompt time of a T-token prefill.
    "ttft_ms": (1000.0 * T / pick(b, T, 0, 0)) if pick(b, T, 0, 0) else None,
    # Peak of the whole llama-bench process; max over the plain and the depth invocation.
    "peak_rss_mb": max(rss) if rss else None,
}
print(json.dumps(row))
PY
}

for m in "${models[@]}"; do
  for t in "${thread_list[@]}"; do
    for ((r = 1; r <= runs; r++)); do
      log "$(basename "$m") threads=$t run $r/$runs: quire"
      record_quire "$m" "$t" "$r"
      log "$(basename "$m") threads=$t run $r/$runs: llama.cpp"
      record_llama "$m" "$t" "$r"
    done
  done
done

# ---------------------------------------------------------------- table

echo "Quire:     $quire bench --model M --threads T --prompt-tokens $prompt_tokens --gen-tokens $gen_tokens --ttft-tokens $ttft_tokens --runs 1 --json"
echo "llama.cpp: $llama_bench -m M -t T -p $prompt_tokens,$ttft_tokens -n $gen_tokens -r 1 -o json"
if [ "$has_depth" = 1 ]; then
  echo "           $llama_bench -m M -t T -p 0 -n $gen_tokens -d $prompt_tokens -r 1 -o json"
fi
echo
echo "llama.cpp: llama-bench from llama-cpp-python==$LLAMA_PY_VERSION (vendor/llama.cpp), CPU; $runs alternating runs each, medians."
echo
python3 - "$results" "$prompt_tokens" "$gen_tokens" "$ttft_tokens" <<'PY'
import json, os, statistics, sys
path, P, G, T = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
data = [json.loads(l) for l in open(path) if l.strip()]
keys = []
for r in data:
    k = (r["model"], r["threads"])
    if k not in keys:
        keys.append(k)

def med(model, threads, tool, metric):
    vs = [r[metric] for r in data
          if r["model"] == model and r["threads"] == threads and r["tool"] == tool
          and isinstance(r.get(metric), (int, float)) and r[metric] > 0]
    return statistics.median(vs) if vs else None

def fmt(v):
    return "n/a" if v is None else f"{v:.1f}"

metrics = [
    ("prefill_tps", f"prefill {P} (t/s)"),
    ("decode_tps", f"decode {G} (t/s)"),
    ("decode_at_depth_tps", f"decode {G} at depth {P} (t/s)"),
    ("ttft_ms", f"time to first token, {T}-token prompt (ms)"),
    ("peak_rss_mb", "peak RSS MB"),
]
print("| model | threads | metric | Quire | llama.cpp | ratio (Quire/llama.cpp) |")
print("|---|---:|---|---:|---:|---:|")
for model, threads in keys:
    for metric, label in metrics:
        q = med(model, threads, "quire", metric)
        l = med(model, threads, "llama", metric)
        ratio = "n/a" if q is None or l is None or l == 0 else f"{q / l:.2f}"
        print(f"| {os.path.basename(model)} | {threads} | {label} | {fmt(q)} | {fmt(l)} | {ratio} |")
PY
