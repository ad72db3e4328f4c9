#!/usr/bin/env bash
# D 64 backward training pairs for sm_80 with extra flags: mk80.sh COMPILE OUT FLAGS...
set -e
c=$1; out=$2; shift 2; mkdir -p $out
for s in 1024 4096 16384; do for causal in "" --causal; do
  shape=(--chip=sm_80 --dtype=bf16 --head-dim=${HD:-64} --seq=$s --batch=$((16384 / s)) --heads=$((2048 / ${HD:-64})) $causal)
  suffix=d${HD:-64}-s$s${causal:+-causal}
  $c --op=attention --lse "${shape[@]}" -o "$out/attention-lse-$suffix"
  $c --op=attention_grad "${shape[@]}" "$@" -o "$out/attention-grad-$suffix"
done; done
