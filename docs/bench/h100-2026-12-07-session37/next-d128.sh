#!/usr/bin/env bash
# Prepared in session 37 for the next: ncu's counters of FlashAttention-2's
# D 128 backward beside ours (`_ps`), S 16k, non-causal — the one bench
# shape still under issue 12's mma.sync bar (0.98x flash). Here first:
#   HD=128 bash docs/bench/h100-2026-12-07-session36/mk80.sh \
#     build/bin/bpt-compile .device-next/m128
#   scripts/gpu-bundle.sh
# then one device call: bash docs/bench/h100-2026-12-07-session37/next-d128.sh
# with carry [".device", ".device-next"] (about 1 minute).
exec > >(tee $OUT/next-d128.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
M=sm__inst_executed.sum,smsp__inst_executed_pipe_tensor.sum,sm__cycles_elapsed.max,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,lts__t_sectors_op_red.sum,launch__registers_per_thread,launch__grid_size,launch__block_size,smsp__inst_executed_op_shared_ld.sum,smsp__inst_executed_op_shared_st.sum,smsp__inst_executed_op_ldsm.sum,smsp__inst_executed_op_global_red.sum,gpu__time_duration.sum
echo "-- ncu flash"
timeout 150 ncu --kernel-name regex:flash_bwd_dq_dk_dv --launch-count 1 --metrics $M --section WarpStateStats python3 docs/bench/h100-2026-12-07-session37/flash_bwd.py 128 2>&1 | grep -v "^==PROF==" | tail -40
echo "-- ncu bpt"
timeout 150 ncu --kernel-name regex:attention_grad_sm80_d --launch-count 1 --metrics $M --section WarpStateStats .device/bpt-run .device-next/m128/attention-grad-d128-s16384.json --no-check --iterations=1 --warmup=0 2>&1 | grep -v "^==PROF==" | tail -40
