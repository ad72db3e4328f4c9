#!/usr/bin/env bash
# Compiles a fixed list of kernel sets (the bench shapes and a few ragged,
# GQA/MQA, f32, pinned-tiling and small-block shapes, on sm_90a and sm_80)
# with the given bpt-compile into OUTDIR. Run it with the binaries before and
# after a refactoring and `diff -r` the two folders: identical PTX and
# manifests mean identical kernels, launches and performance.
#   scripts/compile-reference-sets.sh BPT_COMPILE OUTDIR
set -euo pipefail
c=$1; out=$2; mkdir -p $out
for chip in sm_90a sm_80; do
for d in 64 128; do for s in 1024 4096 16384; do for causal in "" --causal; do
  $c --chip=$chip --op=attention --dtype=bf16 --head-dim=$d --seq=$s --batch=$((16384 / s)) --heads=$((2048 / d)) $causal -o $out/$chip-att-d$d-s$s$causal 2>/dev/null
done; done; done
for s in 4096 16384; do
  $c --chip=$chip --op=block --dtype=bf16 --seq=$s --hidden=2048 --heads=16 --ffn=8192 --activation=gelu --norm=rms_norm --causal -o $out/$chip-block-s$s 2>/dev/null
done
$c --chip=$chip --op=ffn --dtype=bf16 --seq=16384 --hidden=2048 --ffn=8192 --activation=gelu -o $out/$chip-ffn-gelu 2>/dev/null
$c --chip=$chip --op=ffn --dtype=bf16 --seq=16384 --hidden=2048 --ffn=5632 --activation=swiglu -o $out/$chip-ffn-swiglu 2>/dev/null
$c --chip=$chip --op=attention --dtype=bf16 --head-dim=128 --seq=1000 --kv-seq=1531 --heads=8 --kv-heads=2 --causal -o $out/$chip-att-ragged 2>/dev/null
$c --chip=$chip --op=attention --dtype=f16 --head-dim=64 --seq=256 --kv-seq=512 --heads=4 --kv-heads=1 --causal -o $out/$chip-att-mqa 2>/dev/null
$c --chip=$chip --op=block --dtype=f16 --seq=256 --hidden=512 --heads=8 --kv-heads=4 --ffn=1024 --activation=swiglu --norm=layer_norm --causal -o $out/$chip-block-small 2>/dev/null
$c --chip=$chip --op=attention --dtype=f32 --head-dim=64 --seq=256 --heads=2 -o $out/$chip-att-f32 2>/dev/null
$c --chip=$chip --op=block --dtype=f32 --seq=128 --hidden=256 --heads=4 --ffn=512 --activation=gelu --norm=rms_norm --causal -o $out/$chip-block-f32 2>/dev/null
$c --chip=$chip --sm90-kv-block=64 --sm90-stages=3 --op=attention --dtype=bf16 --head-dim=128 --seq=1024 --heads=4 -o $out/$chip-att-pinned 2>/dev/null || true
$c --chip=$chip --sm80-q-block=128 --sm80-kv-block=32 --sm80-stages=3 --op=attention --dtype=bf16 --head-dim=64 --seq=1024 --heads=4 -o $out/$chip-att-pinned80 2>/dev/null || true
done
