#!/usr/bin/env bash
# Session 36, call 2: ncu counters of the paired mma.sync backward (b64 _qs2,
# b128 _ps) against main's at S 16k and 4k, non-causal.
exec > >(tee $OUT/call2.log) 2>&1
M=gpu__time_duration.sum,smsp__inst_executed.sum,smsp__inst_executed_pipe_lsu.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,lts__t_sectors_op_red.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__throughput.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__warp_issue_stalled_barrier_per_warp_active.pct,smsp__warp_issue_stalled_short_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct,smsp__warp_issue_stalled_mio_throttle_per_warp_active.pct,smsp__warp_issue_stalled_math_pipe_throttle_per_warp_active.pct,smsp__warp_issue_stalled_lg_throttle_per_warp_active.pct,smsp__warp_issue_stalled_not_selected_per_warp_active.pct,smsp__warp_issue_stalled_selected_per_warp_active.pct,smsp__warp_issue_stalled_wait_per_warp_active.pct,smsp__warp_issue_stalled_dispatch_stall_per_warp_active.pct,smsp__warp_issue_stalled_membar_per_warp_active.pct,smsp__warp_issue_stalled_drain_per_warp_active.pct,smsp__warp_issue_stalled_no_instruction_per_warp_active.pct,smsp__cycles_active.avg,dram__bytes.sum,lts__t_sectors_srcunit_tex_op_red_lookup_hit.sum
for s in b64/attention-grad-d64-s16384 b128/attention-grad-d128-s16384; do
  echo "-- $s"
  timeout 90 ncu --kernel-name regex:attention_grad_sm80_d --launch-count 1 --metrics $M .device/bpt-run .device-s36/$s.json --no-check --iterations=1 --warmup=0 2>&1 | grep -vE "^==PROF==|^  *$" | grep -E "  [a-z0-9_]+__|error|rror"
done
