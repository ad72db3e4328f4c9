#!/usr/bin/env bash
# Session 37, call 1: the two prepared D 64 probes (E1 query-block order,
# E2 stagger by warp parity) against main's _qs2 (g64); then ncu's
# per-kernel counters of FlashAttention-2's backward and ours at D 64,
# S 16k, non-causal, side by side.
# (Run from the ignored .device-s37/ folder; the paths here are the repo's.
# For D 128: flash_bwd.py 128 and the D 128 set.)
exec > >(tee $OUT/call1.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
ab() { for v in "$@"; do echo "-- $v"; timeout 70 python3 -W ignore bench/bench.py --kernels .device-s37/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---" | cut -d'|' -f2-7,12,14,15; done; }
ab g64 e1-64 e2-64 e2-64 e1-64 g64
M=sm__inst_executed.sum,smsp__inst_executed_pipe_tensor.sum,sm__cycles_elapsed.max,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,lts__t_sectors_op_red.sum,launch__registers_per_thread,launch__grid_size,launch__block_size,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_ldsm.sum,smsp__inst_executed_op_global_red.sum,gpu__time_duration.sum
echo "-- ncu flash"
timeout 150 ncu --kernel-name regex:flash_bwd_dq_dk_dv --launch-count 1 --metrics $M --section WarpStateStats python3 docs/bench/h100-2026-12-07-session37/flash_bwd.py 64 2>&1 | grep -v "^==PROF==" | tail -60
echo "-- ncu bpt"
timeout 150 ncu --kernel-name regex:attention_grad_sm80_d --launch-count 1 --metrics $M --section WarpStateStats .device/bpt-run .device-s37/g64/attention-grad-d64-s16384.json --no-check --iterations=1 --warmup=0 2>&1 | grep -v "^==PROF==" | tail -60
