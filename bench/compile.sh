#!/usr/bin/env bash
# Compiles the benchmark's kernel sets (the shapes of the peer figures in
# the shared anchors: bf16, 16k tokens per batch, hidden 2048) into DIR.
#   bench/compile.sh DIR [bpt-compile flags...]
# Flags after DIR go to every compilation (e.g. --chip=sm_80 for the
# mma.sync kernels); BENCH_OPS (default "attention backward block ffn")
# picks the ops ("backward": the training pair per attention shape, the
# forward with its lse and the gradients, --lse and --op=attention_grad);
# BPT_COMPILE names another bpt-compile to use. BENCH_OPS=ragged (not in
# the default list) compiles FFNs and a block whose rows are not multiples
# of 128 (issue 15; scripts/bench-ragged.sh); BENCH_OPS=shapes compiles
# every line of bench/shapes.txt into DIR/shape-NAME (bench.py --only
# shapes). BENCH_OPS=train compiles the block's training step
# (`--op=block --backward`, bench.py --only train); BENCH_OPS=maxlen that
# step at lengths from 64k to 256k tokens (bench.py --only maxlen).
# BENCH_OPS=ragged-backward: training pairs (as "backward") at lengths that
# are not whole blocks (bench.py --only backward).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: bench/compile.sh DIR [bpt-compile flags...]}
shift
ops=${BENCH_OPS:-attention backward block ffn}
# BPT_COMPILE: another bpt-compile (e.g. an older build, to compare).
if [[ -n "${BPT_COMPILE:-}" ]]; then
  compile=$BPT_COMPILE
else
  "$root/scripts/build.sh" bpt-compile >/dev/null
  compile="$root/build/bin/bpt-compile"
fi
mkdir -p "$out"
if [[ " $ops " == *" attention "* ]]; then
for d in 64 128; do
  for s in 1024 4096 16384; do
    for causal in "" --causal; do
      name=attention-d$d-s$s${causal:+-causal}
      "$compile" --op=attention --dtype=bf16 --head-dim=$d --seq=$s \
        --batch=$((16384 / s)) --heads=$((2048 / d)) $causal "$@" -o "$out/$name"
    done
  done
done
fi
if [[ " $ops " == *" backward "* ]]; then
for d in 64 128; do
  for s in 1024 4096 16384; do
    for causal in "" --causal; do
      shape=(--dtype=bf16 --head-dim=$d --seq=$s --batch=$((16384 / s))
             --heads=$((2048 / d)) $causal)
      suffix=d$d-s$s${causal:+-causal}
      "$compile" --op=attention --lse "${shape[@]}" "$@" -o "$out/attention-lse-$suffix"
      "$compile" --op=attention_grad "${shape[@]}" "$@" -o "$out/attention-grad-$suffix"
    done
  done
done
fi
if [[ " $ops " == *" ragged-backward "* ]]; then
# head dim, length, batch, causal: 16k or 4k tokens of hidden 2048.
for shape in "128 4100 4 --causal" "128 4100 4" "64 1000 16 --causal"; do
  read -r d s batch causal <<< "$shape"
  args=(--dtype=bf16 --head-dim=$d --seq=$s --batch=$batch
        --heads=$((2048 / d)) $causal)
  suffix=d$d-s$s${causal:+-causal}
  "$compile" --op=attention --lse "${args[@]}" "$@" -o "$out/attention-lse-$suffix"
  "$compile" --op=attention_grad "${args[@]}" "$@" -o "$out/attention-grad-$suffix"
done
fi
if [[ " $ops " == *" block "* ]]; then
for s in 4096 16384 65536; do
  "$compile" --op=block --dtype=bf16 --seq=$s --hidden=2048 --heads=16 \
    --ffn=8192 --activation=gelu --norm=rms_norm --causal "$@" -o "$out/block-s$s"
done
fi
# The block's training step as PREFIX-sS for each length S after PREFIX.
training_steps() {
  local prefix=$1 s
  shift
  for s in "$@"; do
    "$compile" --op=block --backward --batch=1 --dtype=bf16 --seq="$s" \
      --hidden=2048 --heads=16 --ffn=8192 --activation=gelu --norm=rms_norm \
      --causal "${flags[@]}" -o "$out/$prefix-s$s"
  done
}
flags=("$@")
if [[ " $ops " == *" train "* ]]; then
  training_steps train 4096 16384 65536
fi
if [[ " $ops " == *" maxlen "* ]]; then
  # Lengths around where 8 GiB runs out (bench.py --only maxlen picks the
  # longest whose manifest fits the cap).
  training_steps maxlen 65536 81920 98304 114688 131072 147456 163840 196608 262144
fi
if [[ " $ops " == *" ffn "* ]]; then
# The block's FFN alone (16k tokens, 2048 -> 8192 -> 2048), and gated.
"$compile" --op=ffn --dtype=bf16 --seq=16384 --hidden=2048 --ffn=8192 \
  --activation=gelu "$@" -o "$out/ffn-gelu-s16384"
"$compile" --op=ffn --dtype=bf16 --seq=16384 --hidden=2048 --ffn=5632 \
  --activation=swiglu "$@" -o "$out/ffn-swiglu-s16384"
fi
if [[ " $ops " == *" ragged "* ]]; then
# Row counts that are not multiples of 128: the GEMMs mask the last row
# tile (600 rows, one chunk; 5000, chunks of 1250; 77; 1).
"$compile" --op=ffn --dtype=f16 --seq=600 --hidden=512 --ffn=2048 \
  --activation=gelu "$@" -o "$out/ffn-ragged-gelu-f16-s600"
"$compile" --op=ffn --dtype=bf16 --seq=600 --hidden=2048 --ffn=5632 \
  --activation=swiglu "$@" -o "$out/ffn-ragged-swiglu-s600"
"$compile" --op=ffn --dtype=bf16 --seq=5000 --hidden=2048 --ffn=8192 \
  --activation=gelu "$@" -o "$out/ffn-ragged-gelu-s5000"
for s in 77 1; do
  "$compile" --op=ffn --dtype=bf16 --seq=$s --hidden=2048 --ffn=8192 \
    --activation=gelu "$@" -o "$out/ffn-ragged-gelu-s$s"
done
# A block of 600 tokens (the expanded block: its attention on mma.sync,
# projections and FFN on the tensor-core GEMMs, on both chips).
"$compile" --op=block --dtype=bf16 --seq=600 --hidden=2048 --heads=16 \
  --ffn=8192 --activation=gelu --norm=rms_norm --causal "$@" -o "$out/block-ragged-s600"
fi
if [[ " $ops " == *" shapes "* ]]; then
while IFS='|' read -r name flags; do
  [[ "$name" =~ ^[[:space:]]*(#|$) ]] && continue
  read -r name <<< "$name" # trims the blanks around it
  # shellcheck disable=SC2086 # the flags are words
  "$compile" $flags "$@" -o "$out/shape-$name"
done < "$root/bench/shapes.txt"
fi
