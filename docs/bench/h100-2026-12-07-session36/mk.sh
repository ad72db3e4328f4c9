#!/usr/bin/env bash
# Non-causal training pairs: mk.sh COMPILE OUT (HD: head dim, CHIP: chip)
set -e
c=$1; out=$2; shift 2; mkdir -p $out
for s in 4096 16384; do
  shape=(--chip=${CHIP:-sm_80} --dtype=bf16 --head-dim=${HD:-64} --seq=$s --batch=$((16384 / s)) --heads=$((2048 / ${HD:-64})))
  suffix=d${HD:-64}-s$s
  $c --op=attention --lse "${shape[@]}" -o "$out/attention-lse-$suffix"
  $c --op=attention_grad "${shape[@]}" "$@" -o "$out/attention-grad-$suffix"
done
