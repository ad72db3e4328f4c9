// RUN: bpt-opt --help | FileCheck %s --check-prefix=HELP
// RUN: bpt-opt --show-dialects | FileCheck %s --check-prefix=DIALECTS

// bpt-opt is mlir-opt with bpt and the upstream pieces of its lowering.

// HELP-DAG: --bpt-decompose-block
// HELP-DAG: --bpt-tile-attention
// HELP-DAG: --bpt-fuse-ffn-residual
// HELP-DAG: --bpt-convert-to-linalg
// HELP-DAG: --bpt-report-memory
// HELP-DAG: --bpt-blockwise
// HELP-DAG: --bpt-to-cpu
// HELP-DAG: --canonicalize
// HELP-DAG: --one-shot-bufferize
// HELP-DAG: --convert-linalg-to-loops
// HELP-DAG: --convert-scf-to-cf
// HELP-DAG: --convert-parallel-loops-to-gpu
// HELP-DAG: --gpu-kernel-outlining
// HELP-DAG: --gpu-module-to-binary
// HELP-DAG: --convert-gpu-to-nvvm
// HELP-DAG: --gpu-lower-to-nvvm-pipeline
// HELP-DAG: --reconcile-unrealized-casts

// DIALECTS: Available Dialects:
// DIALECTS-SAME: arith
// DIALECTS-SAME: bpt
// DIALECTS-SAME: bufferization
// DIALECTS-SAME: func
// DIALECTS-SAME: gpu
// DIALECTS-SAME: linalg
// DIALECTS-SAME: llvm
// DIALECTS-SAME: math
// DIALECTS-SAME: memref
// DIALECTS-SAME: nvgpu
// DIALECTS-SAME: nvvm
// DIALECTS-SAME: scf
// DIALECTS-SAME: tensor
// DIALECTS-SAME: vector
