//===- Passes.td - bpt conversion passes -------------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_PASSES_TD
#define BPT_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def BPTConvertToLinalg : Pass<"bpt-convert-to-linalg", "::mlir::func::FuncOp"> {
  let summary = "Lower bpt's position-wise ops to linalg on tensors";
  let description = [{
    Lowers `bpt.linear`, `bpt.ffn`, `bpt.layer_norm` and `bpt.rms_norm` to
    `linalg.generic` on tensors: contractions accumulate in `f32` (inputs are
    widened inside the loop body), activations and norms are computed in
    `f32`, and results are rounded to the op's element type once, at the end.
    The FFN hidden activation stays `f32` between its two products.

    `bpt.attention` and `bpt.transformer_block` are not lowered here: they
    must be tiled (`bpt-tile-attention`, `bpt-fuse-ffn-residual`) or
    decomposed (`bpt-decompose-block`) first, i.e. run `bpt-blockwise`; the
    pass fails with an error on any that remain.

    With `keep-rowwise`, a norm whose `#bpt.strategy` takes the `rowwise`
    path stays: `bpt-to-nvvm` launches its row kernel
    (`bpt-norm-to-rowwise`) after `bpt-rematerialize`, which may compute it
    again where it is read late. Without it (the CPU path), every norm is
    lowered, whatever its strategy.
  }];
  let options = [
    Option<"keepRowwise", "keep-rowwise", "bool", /*default=*/"false",
           "Leave norms whose strategy takes the rowwise path">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def BPTMapToGPU : Pass<"bpt-map-to-gpu", "::mlir::func::FuncOp"> {
  let summary = "Map bufferized blockwise IR onto GPU launches";
  let description = [{
    Turns a bufferized function (the `bpt-to-nvvm` bufferization stage's
    output) into host code that only allocates buffers and launches kernels:

    - each blockwise `scf.forall` becomes one `gpu.launch` of a persistent
      grid: block b runs iterations b, b + grid, ... of the loop (at most
      `max-blocks` blocks, `max-workspace-blocks` when tiles spill to the
      global workspace, so that the workspace does not grow with the
      sequence), each block with `threads` threads. The loop body runs in
      every thread; each
      `linalg` op and `memref.copy` in it becomes a loop that the threads
      share (thread t takes elements t, t + threads, ...; an op with
      `bpt.thread_tile = array<i64: rm, rn>` takes rm x rn output elements
      a thread, kept in registers across its reductions), followed by a
      `gpu.barrier`. The body's allocations (the Q, K, V and score tiles,
      the online-softmax state, fused consumer tiles) are placed in dynamic
      shared memory, largest last, up to `shared-memory` bytes; what does
      not fit goes to a per-block slice of a global workspace buffer.
    - every other `linalg` op or `memref.copy` becomes a launch of its own,
      one element per thread (grid-stride); an all-parallel op whose
      buffers are indexed by its innermost loop only as their contiguous
      last dimension (identity layouts, static shapes) takes a 16-byte
      vector of elements per thread instead (`vector.load` /
      `vector.store`, aligned: every buffer of a kernel set starts 16-byte
      aligned, which the runtime checks), its body run once per element.

    Host-level allocations stay: they are the kernel set's workspace
    buffers. The result is ready for `gpu-kernel-outlining`.
  }];
  let options = [
    Option<"threads", "threads", "int64_t", /*default=*/"256",
           "Threads per block">,
    Option<"sharedMemory", "shared-memory", "int64_t", /*default=*/"49152",
           "Bytes of shared memory a block may use (bpt-to-nvvm passes the "
           "chip's, from bpt/Target/Chip.h; 48 KiB fits every chip)">,
    Option<"maxBlocks", "max-blocks", "int64_t", /*default=*/"1024",
           "Most blocks of a blockwise loop's grid">,
    Option<"maxWorkspaceBlocks", "max-workspace-blocks", "int64_t",
           /*default=*/"32",
           "Most blocks when tiles spill to the global workspace (its size "
           "is this times the spilled bytes per block)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def BPTApproximateMath : Pass<"bpt-approximate-math"> {
  let summary = "Replace math.erf, math.tanh and math.exp by f32 approximations";
  let description = [{
    NVVM has no instruction for `erf`, `tanh` or `exp`, and
    `convert-gpu-to-nvvm` would call libdevice for them (linked only where a
    CUDA toolkit is found), so they are expanded before it into ops that
    `bpt-math-to-intrinsics` lowers: f32 `erf` as Abramowitz and Stegun's
    7.1.26 (absolute error ≤ 1.5e-7: one approximate division, one `exp2`,
    fused multiply-adds), f32 `exp(x)` as `exp2(x · log2 e)` (one `ex2`; error
    about 2 + 1.2·|x| ulp against libdevice's 2), `tanh` and other widths of
    `erf` into MLIR's polynomial approximations (a few ulp).

    Example: `%y = math.exp %x : f32` becomes
    `%s = arith.mulf %x, %log2e : f32` and `%y = math.exp2 %s : f32`.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def BPTMathToIntrinsics : Pass<"bpt-math-to-intrinsics"> {
  let summary = "Lower f32 math ops to the LLVM intrinsics NVPTX selects, "
                "not libdevice calls";
  let description = [{
    `convert-gpu-to-nvvm` lowers `math.fma`, `math.absf`, `math.copysign`,
    `math.sqrt`, `math.exp2`, `math.log2` and `arith.maxnumf` /
    `arith.minnumf` to calls of libdevice's `__nv_*` functions, which
    `gpu-module-to-binary` links only when it finds a CUDA toolkit; without
    one the PTX keeps `.extern .func __nv_*` declarations that no driver
    loads. This pass runs before it (in the kernel modules) and replaces
    each f32 op by `llvm.call_intrinsic` of the intrinsic that the
    libdevice function itself calls (its branch without flush-to-zero), so
    the PTX is what linking libdevice gave, without a toolkit (LLVM folds
    the generic intrinsics a little further: `|x|·|x|` becomes `x·x`):

    | op                 | intrinsic                  | PTX              |
    |--------------------|----------------------------|------------------|
    | `math.fma`         | `llvm.fma.f32`             | `fma.rn.f32`     |
    | `math.absf`        | `llvm.fabs.f32`            | `abs.f32`        |
    | `math.copysign`    | `llvm.copysign.f32`        | `copysign.f32`   |
    | `arith.maxnumf`    | `llvm.maxnum.f32`          | `max.f32`        |
    | `arith.minnumf`    | `llvm.minnum.f32`          | `min.f32`        |
    | `math.sqrt`        | `llvm.nvvm.sqrt.approx.f`  | `sqrt.approx.f32`|
    | `math.exp2`        | `llvm.nvvm.ex2.approx.f32` | `ex2.approx.f32` |
    | `math.log2`        | `llvm.nvvm.lg2.approx.f`   | `lg2.approx.f32` |

    `math.log2` is the exception: libdevice's `__nv_log2f` is a longer,
    accurate sequence; `lg2.approx` is what the tensor-core kernels already
    use for the same log-sum-exp. The op's fast-math flags go to the call.
    Other widths and ops are left to `convert-gpu-to-nvvm` (bpt-compile
    warns if a libdevice call reaches the PTX). `llvm.call_intrinsic`
    rather than `llvm.intr.fabs` and the like: `convert-gpu-to-nvvm` marks
    `llvm.intr.fabs`, `copysign`, `sqrt`, `exp2` illegal.

    Example: `%y = math.fma %a, %b, %c : f32` becomes
    `%y = llvm.call_intrinsic "llvm.fma.f32"(%a, %b, %c) : (f32, f32, f32) -> f32`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def BPTKeepSingleBlockLoops : Pass<"bpt-keep-single-block-loops",
                                   "::mlir::func::FuncOp"> {
  let summary = "Keep single-iteration blockwise loops as loops for the GPU";
  let description = [{
    Gives each top-level `scf.forall` of a function whose dimensions all
    have exactly one iteration (batch 1, one head, one query block) a
    `#gpu.block<linear_dim_i>` mapping. Canonicalization would otherwise
    inline its body into the host function, where `bpt-map-to-gpu` can
    only reject it; a mapped loop is left alone and becomes a launch of
    one thread block. Loops with more iterations are not touched (their
    unit dimensions still fold away as before).

    Example: `scf.forall (%b, %h, %i) in (1, 1, 1)` gets
    `{mapping = [#gpu.block<linear_dim_0>, #gpu.block<linear_dim_1>,
    #gpu.block<linear_dim_2>]}`.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def BPTSplitReductions : Pass<"bpt-split-reductions", "::mlir::func::FuncOp"> {
  let summary = "Split long reductions of few outputs for the GPU's portable launches";
  let description = [{
    A `linalg` reduction at the function's top level becomes a portable
    launch of one thread per output element (`bpt-map-to-gpu`): the norm
    gradients' per-row sums (a few thousand rows of thousands of elements)
    and per-channel sums (a few thousand channels over every row) then run
    on a few dozen thread blocks, each thread summing thousands of elements
    in turn. This pass splits such a reduction (one reduction dimension,
    one output, a recognised combiner: `linalg::splitReduction`) into a
    reduction of `ratio` partial results per output and a short reduction
    of the partials, so that the first launch has at least
    `min-parallelism` threads. The ratio is a power of two dividing the
    reduction's length that leaves each thread at least `min-elements`
    elements; the split dimension is the innermost parallel one when the
    reduction is a row's (neighbouring threads read neighbouring elements)
    and the outermost when it runs over rows (neighbouring threads read
    neighbouring columns). Loop nests (`scf.forall` bodies) and reductions
    that already have the parallelism are left alone.

    Example: a [4096, 2048] → [2048] column sum becomes a [64, 2048]
    partial sum over 64 rows each (131072 threads) and a [2048] sum of
    the 64 partials.
  }];
  let options = [
    Option<"minParallelism", "min-parallelism", "int64_t",
           /*default=*/"131072",
           "Threads the first launch should have (about a thousand per "
           "multiprocessor of a large GPU)">,
    Option<"minElements", "min-elements", "int64_t", /*default=*/"32",
           "Least elements one thread of the split reduction sums">,
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def BPTTileGemms : Pass<"bpt-tile-gemms", "::mlir::func::FuncOp"> {
  let summary = "Tile the portable path's GEMMs through shared memory";
  let description = [{
    A `linalg` op left at a bufferized function's top level becomes a
    portable launch of one thread per output element (`bpt-map-to-gpu`);
    for a GEMM each thread then reads a whole row and column from global
    memory. This pass rewrites such a GEMM (the portable FFN's and
    projections' matrix products, the portable backward's gradient GEMMs)
    as a blockwise loop that `bpt-map-to-gpu` maps as it maps attention's:
    an `scf.forall` over output tiles of `tile-m` x `tile-n` elements whose
    body copies the tile's current output into a buffer, then for each
    step of `tile-k` along the reduction copies the two operands' slices
    into buffers (shared memory on the GPU) and runs the op on the three
    buffers; the tile goes back to the output at the end. The reduction
    runs in the same order as before, so the result is the same to the
    bit (the CPU path runs the pass too, under `bpt-cpu-run --tile-gemms`).

    The tiled op carries `bpt.thread_tile = array<i64: rm, rn>`: each of
    `threads` threads computes rm x rn output elements in registers,
    neighbouring threads neighbouring columns (a warp's 32 threads share
    a row, so the first operand's element is one broadcast and the
    second's 32 consecutive words). The operands' buffers are one 32-bit
    word wider than their tiles in their last dimension, so that a tile
    read along its first dimension (a transposed operand) meets no bank
    conflicts.

    A GEMM here is a `linalg` op on buffers with static shapes, two inputs
    and one output, no `linalg.index`, every indexing map a projected
    permutation, an output of rank 2 or more indexed by every parallel
    dimension, one input that uses the output's second-to-last dimension
    (m) but not its last (n), the other n but not m, both the innermost
    reduction dimension (k); m and n at least 32, k a multiple of 8. Ragged
    m and n take partial tiles (the copies' sizes are the tile's rows and
    columns that exist; the buffers' other elements are computed and
    dropped); the k step is the largest power of two up to `tile-k` that
    divides k. The tile is the first of 128 x 128, 128 x 64, 64 x 64,
    64 x 32 and 32 x 32 (each at most `tile-m` x `tile-n`, and m and n
    rounded up to 32) whose buffers fit `shared-memory` bytes and that
    leaves at least two tiles for each of `multiprocessors`; where none
    does, the smallest that fits. Loop bodies
    (`scf.forall`) are left alone: they are one kernel already.

    Example: a [1, 4096, 1024] x [1024, 4096] FFN GEMM becomes an
    `scf.forall` over 32 x 32 tiles of 128 x 128, each with 32 steps of 32
    along the reduction; its thread tile is 16 x 4 at 256 threads. With
    1000 rows and 2048 columns 128 x 128 would leave 128 tiles for 132
    multiprocessors: 64 x 64 tiles, 16 x 32 of them, thread tile 8 x 2.
  }];
  let options = [
    Option<"tileM", "tile-m", "int64_t", /*default=*/"128",
           "Most output tile rows (along m)">,
    Option<"tileN", "tile-n", "int64_t", /*default=*/"128",
           "Most output tile columns (along n; a multiple of 32)">,
    Option<"tileK", "tile-k", "int64_t", /*default=*/"32",
           "Most reduction elements a step copies">,
    Option<"threads", "threads", "int64_t", /*default=*/"256",
           "Threads per block of bpt-map-to-gpu (for the thread tile)">,
    Option<"sharedMemory", "shared-memory", "int64_t", /*default=*/"49152",
           "Bytes of shared memory the tile's buffers may use">,
    Option<"multiprocessors", "multiprocessors", "int64_t", /*default=*/"132",
           "Multiprocessors of the chip (tiles shrink until there are two "
           "for each)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def BPTFuseElementwise : Pass<"bpt-fuse-elementwise", "::mlir::func::FuncOp"> {
  let summary = "Fuse chains of elementwise linalg ops into one portable launch";
  let description = [{
    Each `linalg` op left at the function's top level becomes a portable
    launch that reads its operands from and writes its result to global
    memory. A chain of elementwise ops (a norm gradient's f32 result, its
    rounding to the element type, the residual add after it; sums of
    several gradients) thus moves each intermediate through memory twice.
    This pass fuses an elementwise `linalg.generic` into the generic that
    uses it (`linalg::fuseElementwiseOps`), moving a `tensor.expand_shape`
    between the two above the producer first (reshape propagation by
    expansion), when

      - both ops are at the function's top level (a loop nest's body is one
        kernel already and is left alone),
      - the producer's result has that single use (nothing is computed
        twice and the intermediate disappears), and
      - the consumer reads it through a permutation (no broadcast: a
        per-row statistic is not recomputed for every element of the row).

    Reductions are fused into only as consumers (an elementwise producer of
    a row sum), so `bpt-split-reductions` still sees one reduction per op.

    Example: `dx = g·(…)` in f32, `truncf` to bf16, then `dx + r` become one
    generic reading the norm's inputs and `r` and writing the bf16 sum.

    Runs in `bpt-to-nvvm` (before `bpt-split-reductions`), in `bpt-to-cpu`
    and in `bpt-cpu-run`'s pipeline, after the linalg stage.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def BPTMergeKernelModules : Pass<"bpt-merge-kernel-modules", "::mlir::ModuleOp"> {
  let summary = "Gather all outlined kernels into one gpu.module";
  let description = [{
    `gpu-kernel-outlining` puts each kernel in a `gpu.module` of its own; a
    kernel set is one PTX file, so this pass moves every kernel into a single
    `gpu.module @bpt_kernels`, names each kernel after the module it came
    from (unique), and updates the `gpu.launch_func` ops. Characters a PTX
    identifier cannot hold become `_` (a kernel outlined from
    `func.func @"my-attention"` is `my_attention_kernel`), and a leading
    digit gets a `_` before it.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def BPTDependentLaunch : Pass<"bpt-dependent-launch", "::mlir::ModuleOp"> {
  let summary = "Let each kernel's blocks start before the previous kernel ends (sm_90 and later)";
  let description = [{
    Programmatic dependent launch: on `chip`s that have it (sm_90 and
    later), every kernel of the module's `gpu.module`s begins with
    `griddepcontrol.wait` (nothing before it reads or writes global memory)
    and then `griddepcontrol.launch_dependents`, and each `gpu.launch_func`
    of such a kernel gets the unit attribute `bpt.dependent_launch`. The
    kernel-set manifest records it as the launch's `"dependent": true`, and
    the runtime then launches the kernel with CUDA's programmatic stream
    serialization: its blocks may be scheduled as the previous kernel's
    last wave drains, and wait there for that kernel's results, instead of
    being launched only after it has ended. Launched without that
    attribute, both instructions do nothing, so the kernels stay correct
    under any launcher. Other chips: the module is left unchanged.

    Runs in `bpt-to-nvvm` after the kernels are outlined and merged.
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"",
           "The chip the kernels are compiled for">,
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def BPTSelectStrategy : Pass<"bpt-select-strategy", "::mlir::ModuleOp"> {
  let summary = "Choose each op's kernel path and tiling, and record it";
  let description = [{
    Attaches a `#bpt.strategy` attribute (as `bpt.strategy`) to every
    `bpt.attention`, `bpt.ffn`, `bpt.linear`, `bpt.transformer_block`,
    norm and gradient op that lacks one for `chip`: the kernel path
    (`wgmma` on sm_90a, `mma_sync` on sm_80 and later, `rowwise` for the
    norms of 16-bit rows, else `portable`) and its tiling. A path
    is offered only where the chip has it (bpt/Target/Chip.h), fastest
    first; for each path that does not take an op, a remark on the op says
    why. Tilings are the pinned options where non-zero, else chosen: the
    attention kernels' by the cost model of
    `bpt/Conversion/AttentionCostModel.h`, the GEMMs' by their kernels'
    rule (128-wide tiles, as many stages as fit). Ops inside a blockwise
    loop nest are tiles of it and get none. An attention with at most 64
    query rows is split over its keys (`kv_splits`, FlashDecoding's
    schedule) on the mma.sync split kernel where that fills the chip
    better, the count from the chip's multiprocessors and the key length
    (`kv-splits` pins it; 1 never splits).

    Later passes read the attribute and do not choose again:
    `bpt-blockwise` tiles attention with its `q_block` and `kv_block`, and
    the conversions (`bpt-attention-to-sm90`, ...) build the kernel it
    names. Running the pass again (after `bpt-decompose-block` expands a
    block into pieces) leaves recorded strategies as they are.

    Example (`chip=sm_90a`):

    ```mlir
    %o = bpt.attention %q, %k, %v causal
        {bpt.strategy = #bpt.strategy<wgmma, chip = "sm_90a", q_block = 128,
                                      kv_block = 128, stages = 2, warps = 12>}
        : (tensor<1x16x4096x128xbf16>, tensor<1x16x4096x128xbf16>,
           tensor<1x16x4096x128xbf16>) -> tensor<1x16x4096x128xbf16>
    ```
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"",
           "Target chip (sm_XY or sm_XYa)">,
    Option<"tensorCores", "tensor-cores", "bool", /*default=*/"true",
           "Allow the tensor-core paths and the norms' row kernel (off: "
           "everything portable)">,
    Option<"allowTF32", "allow-tf32", "bool", /*default=*/"false",
           "f32 FFNs on tensor cores as TF32 (mma.sync m16n8k8; off: f32 "
           "stays portable)">,
    Option<"qBlock", "q-block", "int64_t", /*default=*/"64",
           "Portable path: query rows per block">,
    Option<"kvBlock", "kv-block", "int64_t", /*default=*/"64",
           "Portable path: key/value rows per block">,
    Option<"chunkRows", "chunk-rows", "int64_t", /*default=*/"0",
           "Rows per chunk of the tensor-core FFN and block (a multiple of "
           "128; lowered to divide a block's sequences; 0: 2048, and a lone "
           "wgmma FFN's from its GEMMs' waves)">,
    Option<"sm90KvBlock", "sm90-kv-block", "int64_t", /*default=*/"0",
           "wgmma attention: key/value rows per block, 64, 80, 96, 112 or "
           "128 (0: the cost model's choice)">,
    Option<"sm90Stages", "sm90-stages", "int64_t", /*default=*/"0",
           "wgmma attention: K/V ring stages, 2 to 4 (0: the cost model's "
           "choice)">,
    Option<"gemmBlockN", "sm90-gemm-block-n", "int64_t", /*default=*/"0",
           "wgmma GEMMs: tile columns, 128 or 256 (0: 128)">,
    Option<"gemmStages", "sm90-gemm-stages", "int64_t", /*default=*/"0",
           "wgmma GEMMs: stages, 2 to 8 (0: three, two blocks a multiprocessor, where the epilogue allows; else as many as fit)">,
    Option<"gemmSplit", "sm90-gemm-split", "int64_t", /*default=*/"0",
           "wgmma GEMMs: the most parts a mostly idle last wave's tiles "
           "are split into along K, 1 (none) to 8 (0: the model's choice)">,
    Option<"sm80QBlock", "sm80-q-block", "int64_t", /*default=*/"0",
           "mma.sync attention: query rows per block, 64 or 128 (0: the "
           "cost model's choice)">,
    Option<"sm80KvBlock", "sm80-kv-block", "int64_t", /*default=*/"0",
           "mma.sync attention: key/value rows per block, 32, 64 or 128 "
           "(0: the cost model's choice)">,
    Option<"sm80Stages", "sm80-stages", "int64_t", /*default=*/"0",
           "mma.sync attention: K/V ring stages, 2 to 4 (0: the cost "
           "model's choice)">,
    Option<"sm80GemmBlockN", "sm80-gemm-block-n", "int64_t", /*default=*/"0",
           "mma.sync GEMMs: tile columns, 128 or 256 (0: 256 where N "
           "allows)">,
    Option<"sm80GradQBlock", "sm80-grad-q-block", "int64_t",
           /*default=*/"0",
           "mma.sync attention backward: query rows per step, 32 or 64 (0: "
           "64, or 32 where the default tiling does not fit)">,
    Option<"sm80GradKvBlock", "sm80-grad-kv-block", "int64_t",
           /*default=*/"0",
           "mma.sync attention backward: key/value rows per thread block, "
           "64 or 128 (0: 128, or 64 where that does not fit)">,
    Option<"sm80GradStages", "sm80-grad-stages", "int64_t", /*default=*/"0",
           "mma.sync attention backward: Q/dO ring stages, 2 to 4 (0: 2)">,
    Option<"kvSplits", "kv-splits", "int64_t", /*default=*/"0",
           "Attention with short queries: key/value splits (0: the cost "
           "rule's choice, 1: never split)">,
    Option<"reportBlockSizes", "report-block-sizes", "bool",
           /*default=*/"true",
           "Remark where a q-block / kv-block given to this pass is "
           "ignored by a tensor-core kernel "
           "(pipelines set it from whether their own were given)">,
  ];
}

def BPTAttentionToSM90 : Pass<"bpt-attention-to-sm90", "::mlir::ModuleOp"> {
  let summary = "Lower bpt.attention to a Hopper (sm_90a) tensor-core kernel";
  let description = [{
    Replaces each blockwise attention nest (the `scf.forall` of
    `bpt-tile-attention`, tagged `#bpt.attention_nest`) whose `#bpt.strategy`
    takes the `wgmma` path by a `gpu.launch_func` of a kernel built for
    sm_90a in a `gpu.module @bpt_sm90`: the nest's algorithm (128-row query
    blocks, an exp2 online softmax over `kv_block`-row key/value blocks,
    causal blocks skipped by the loop bound) with its tiles in registers and
    shared memory; the nest's parallel loop becomes the grid, its key/value
    loop the kernel's pipeline of `stages` stages. A producer warpgroup copies
    Q, K and V tiles with TMA (`cp.async.bulk.tensor`, 128-byte swizzle) into
    a ring of shared-memory stages guarded by mbarriers; two consumer
    warpgroups (`setmaxnreg`) compute Q·Kᵀ and P·V with `wgmma.mma_async`,
    P taken from registers. A nest that also returns the rows' log-sum-exp
    (the forward of training) gets a kernel (`_lse`) that writes it from
    each row's running maximum and sum, into a second buffer.

    The host side is `nvgpu.tma.create.descriptor` for Q, K and V (each
    viewed as a 2-D `[rows, D]` tensor) and the launch; a kernel set's
    manifest turns the descriptors into tensor maps the runtime encodes.
    The pass does not choose: `bpt-select-strategy` decided the path and
    the tiling (and said in a remark why an attention did not take it);
    nests with other strategies are left alone.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTAttentionGradToSM90 : Pass<"bpt-attention-grad-to-sm90",
                                   "::mlir::ModuleOp"> {
  let summary = "Lower bpt.attention_grad to a Hopper (sm_90a) tensor-core "
                "kernel";
  let description = [{
    Replaces the two blockwise nests of an attention backward (tagged
    `#bpt.attention_grad_nest` by `bpt-tile-attention`) whose `#bpt.strategy`
    takes the `wgmma` path by a launch of a kernel built for sm_90a: the
    key/value nest's algorithm (a thread block per key block of `kv_block`
    rows, looping over the query heads of the group and their `q_block`-row
    query blocks that see it, recomputing P from the saved log-sum-exp) with
    its tiles in registers and shared memory. A producer warpgroup copies K
    and V once and Q, dO, lse and D per step with TMA into `stages` stages;
    two consumer warpgroups compute Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, then
    dV += Pᵀ·dO and dK += dSᵀ·Q with `wgmma.mma_async` (Pᵀ and dSᵀ from
    registers).

    The query nest's dQ is folded into the kernel: both consumers' dSᵀ rows
    meet in a shared-memory tile, and each step's dS·K (64 columns at a
    time, one consumer each) is staged in shared memory and added to an f32
    accumulator by bulk reductions (`cp.reduce.async.bulk .add.f32`); dQ is
    the accumulator times the scale, rounded (a post-pass kernel). The order of
    those additions is not fixed: dQ is not bitwise reproducible on this
    path (dK and dV are, as on the portable path). A pre-pass kernel
    computes D = rowsum(dO ∘ O) and zeroes the accumulator, replacing the
    linalg pre-pass. The pass does not choose: nests with other
    strategies are left alone.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def BPTAttentionGradToSM80 : Pass<"bpt-attention-grad-to-sm80",
                                   "::mlir::ModuleOp"> {
  let summary = "Lower bpt.attention_grad to an mma.sync (sm_80+) tensor-core "
                "kernel";
  let description = [{
    Replaces the two blockwise nests of an attention backward (tagged
    `#bpt.attention_grad_nest` by `bpt-tile-attention`) whose `#bpt.strategy`
    takes the `mma_sync` path by launches of kernels in `gpu.module
    @bpt_sm80`: the key/value nest's algorithm (a thread block per key
    block of `kv_block` rows, 16 a warp, looping over the query heads of
    the group and their `q_block`-row query blocks that see it,
    recomputing P from the saved log-sum-exp) with its tiles in registers
    and shared memory. The block's threads copy K and V once and Q, dO,
    lse and D per step with `cp.async` into `stages` stages; each warp
    computes Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for its key rows, then dV += Pᵀ·dO
    and dK += dSᵀ·Q (m16n8k16 `mma.sync`, Pᵀ and dSᵀ from registers, dO and
    Q by `ldmatrix.trans`).

    The query nest's dQ is folded into the kernel: the warps' dSᵀ rows
    meet in a shared-memory tile, and each warp adds its piece of the
    step's dS·K into an f32 accumulator in global memory, an element at a
    time (`red.global.add.f32`); dQ is the accumulator times the scale,
    rounded (a post-pass kernel). The order of those additions is not
    fixed: dQ is not bitwise reproducible on this path (dK and dV are, as
    on the portable path). A pre-pass kernel computes D = rowsum(dO ∘ O)
    and zeroes the accumulator, replacing the linalg pre-pass (the same
    pre- and post-pass kernels as `bpt-attention-grad-to-sm90`'s). The
    kernel's name carries its tiling, `_t<q_block>x<kv_block>x<stages>`.
    The pass does not choose: nests with other strategies are left alone.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTAttentionToSM80 : Pass<"bpt-attention-to-sm80", "::mlir::ModuleOp"> {
  let summary = "Lower bpt.attention to an mma.sync (sm_80+) tensor-core kernel";
  let description = [{
    The fallback of the Hopper path, for chips that have warp-level tensor
    cores (`mma.sync`, sm_80 and later) but no wgmma or TMA. Replaces each
    blockwise attention nest whose `#bpt.strategy` takes the `mma_sync`
    path by a `gpu.launch_func` of a kernel in a `gpu.module @bpt_sm80`: the
    nest's algorithm (`q_block`-row query blocks, an exp2 online softmax
    over `kv_block`-row key/value blocks, causal blocks skipped by the loop
    bound) with its tiles in registers and shared memory. One warp per 16 query rows; the
    block's threads copy Q once and a ring of `stages` K/V blocks with
    `cp.async`; Q·Kᵀ and P·V are m16n8k16 `mma.sync` with operands loaded by
    `ldmatrix` (`.trans` for V), P taken from the S accumulators.

    The kernel's name carries its tiling, `_t<q_block>x<kv_block>x<stages>`.
    Sequence lengths need not be multiples of the blocks: the last blocks
    are zero-filled by `cp.async` (no read past the end), their keys masked
    and their rows not stored. A nest that also returns the rows'
    log-sum-exp gets a kernel (`_lse`) that writes it, as the wgmma one does.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTFFNToSM80 : Pass<"bpt-ffn-to-sm80", "::mlir::ModuleOp"> {
  let summary = "Lower FFN chunk loops to mma.sync (sm_80+) tensor-core GEMMs";
  let description = [{
    The FFN of the mma.sync path, for chips without wgmma. Replaces each
    `#bpt.chunk_loop<ffn>` (built by `bpt-chunk-ffn`) whose strategy takes
    the `mma_sync` path by a host loop of GEMM kernel launches in
    `gpu.module @bpt_sm80`, per chunk of `chunk_rows` rows: U = act(X · W_in) (for a gated
    activation act(X · W_gate) ⊙ (X · W_in), both products in one kernel)
    into a [chunk, ffn] buffer, then Y = U · W_out; so only one chunk of the
    [rows, ffn] intermediate exists. Each kernel computes 128 x `block-n`
    tiles of its output with warps of m16n8k16 `mma.sync` (64 x 64 each, or
    64 x 32 when gated), A and B slices 64 deep
    copied with `cp.async` into as many shared-memory stages as fit
    `shared-memory` (2 to 4), fragments loaded by `ldmatrix` (`.trans` for
    the row-major weights); the activation is applied in f32 before the one
    rounding.

    Takes the `bpt.ffn` ops whose `#bpt.strategy` takes the `mma_sync` path,
    with its `chunk_rows` and `gemm_block_n` (0: 256 where N allows); the
    stages are as many as fit the chip's shared memory.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTLinearToSM80 : Pass<"bpt-linear-to-sm80", "::mlir::ModuleOp"> {
  let summary = "Lower bpt.linear to an mma.sync (sm_80+) tensor-core GEMM";
  let description = [{
    Replaces each `bpt.linear` whose `#bpt.strategy` takes the `mma_sync`
    path by one launch of the GEMM kernel of `bpt-ffn-to-sm80` (no
    activation) in `gpu.module @bpt_sm80`: the projections of a block that
    `bpt-decompose-block` expanded for the mma.sync path.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTExpandGradients : Pass<"bpt-expand-gradients", "::mlir::func::FuncOp"> {
  let summary = "Write tensor-core linear_grad and ffn_grad as bpt.matmul GEMMs";
  let description = [{
    Rewrites each `bpt.linear_grad` and `bpt.ffn_grad` whose `#bpt.strategy`
    takes a tensor-core path into `bpt.matmul`s with transposed operands
    and f32 accumulators, plus elementwise `linalg.generic`s:

    - `linear_grad`: `dx = dy · wᵀ`, `dw = xᵀ · dy` (all rows in one
      product), `db = Σ_rows dy`.
    - `ffn_grad`, per chunk of the strategy's `chunk_rows` rows (the last
      one may be shorter), unrolled: `u = x·w_in` (`g = x·w_gate`) and
      `dh = dy·w_outᵀ` in f32; one elementwise pass gives the hidden
      activation `h` and `du` (`dg`) in the operands' type. On the wgmma
      path a two-matrix FFN's `h` and `du` come from the dh GEMM's
      epilogue instead (`du, h = bpt.matmul dy, w_out, act_grad <act> u`):
      neither dh in f32 nor the elementwise pass is written;
      `dw_out += hᵀ·dy`, `dw_in += xᵀ·du` (`dw_gate += xᵀ·dg`) into f32
      accumulators that the last chunk rounds; `dx = du·w_inᵀ (+ dg·w_gateᵀ)`
      for the chunk's rows. The `[rows, ffn]` intermediates exist for one
      chunk at a time.

    The `bpt.matmul`s have no strategy: `bpt-select-strategy`, which runs
    next in `bpt-to-nvvm`, chooses each one's path. Ops with the portable
    strategy (and ops without one) are left to `bpt-convert-to-linalg`.
    The CPU pipeline runs this pass too, so the same expansion is checked
    against float64 by `bpt-cpu-run`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def BPTLinearToSM90 : Pass<"bpt-linear-to-sm90", "::mlir::ModuleOp"> {
  let summary = "Lower bpt.linear and bpt.matmul to a Hopper (sm_90a) wgmma GEMM";
  let description = [{
    Replaces each `bpt.linear` whose `#bpt.strategy` takes the `wgmma` path
    by one launch of the GEMM kernel of `bpt-ffn-to-sm90` (no activation)
    in `gpu.module @bpt_sm90`, over the input viewed as `[rows, K]` (TMA
    descriptors of it and of the weight): lone projections, and those of a
    block that `bpt-decompose-block` expanded (an mma_sync block strategy
    recorded on sm_90a). Any row count: the last row tile is masked.
    Each wgmma `bpt.matmul` (the gradients' GEMMs) is one launch of the
    same kernel reading its transposed operands in place (an M-major A, a
    K-major B), with its f32 sum added in the epilogue and an f32 or 16-bit
    C; one with an activation-gradient epilogue (`act_grad`) also reads its
    f32 pre-activation and writes its second result `act` (kernels named
    `_actgrad_<act>`). The GEMM tiling is the strategy's `gemm_block_n` and
    `gemm_stages`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTNormToRowwise : Pass<"bpt-norm-to-rowwise", "::mlir::ModuleOp"> {
  let summary = "Lower bpt.layer_norm and bpt.rms_norm to the row kernel";
  let description = [{
    Replaces each `bpt.layer_norm` and `bpt.rms_norm` whose `#bpt.strategy`
    takes the `rowwise` path by one launch of the row kernel in
    `gpu.module @bpt_rows`: one warp a row (eight a block), the row's 16-bit
    elements held in registers from 16-byte loads, the mean and the mean
    square summed in f32 by warp shuffles, one pass over global memory each
    way. Any row count: the last block's spare warps skip. The portable
    lowering of a norm is ten launches (the split row sums of both
    statistics, their fills, the normalisation); this is one.

    `bpt-to-nvvm` runs it at the start of bufferization, after
    `bpt-rematerialize` (which repeats a norm where its output is read
    again late, instead of keeping it alive), so the norms stay `bpt` ops
    through the linalg stage (`bpt-convert-to-linalg{keep-rowwise}`).
    The same kernel is the block's in `bpt-block-to-sm90`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTBlockToSM90 : Pass<"bpt-block-to-sm90", "::mlir::ModuleOp"> {
  let summary = "Lower a transformer block's chunk loops to Hopper (sm_90a) kernels";
  let description = [{
    Maps the chunk loops that `bpt-decompose-block` builds from a
    `bpt.transformer_block` whose `#bpt.strategy` takes the `wgmma` path
    (`#bpt.chunk_loop<kv_projection>` and `#bpt.chunk_loop<block>`) to
    host sequences of sm_90a kernel launches. The loops' iterations are
    independent, so the launches run in four phases: per chunk, norm1 and
    the Q, K and V projections (the kv_projection loop's iteration fused
    with the block loop's first ops: norm1 runs once a chunk); one
    attention launch over every sequence (the kernel of
    `bpt-attention-to-sm90` in a token-major layout, its output written
    over Q); one output projection of all rows into the result, x's rows
    added in its epilogue; then per chunk norm2 of the result's rows and
    the FFN's two GEMMs (activation, then the result's own rows added, in
    the epilogues). Q, K and V span the sequence, and are dead before the
    FFN's chunk buffers are written (the kernel set's workspace arena
    shares their bytes). No buffer has a sequence × ffn or sequence ×
    sequence term. Norms run in a kernel of their own: one warp per row,
    16-byte accesses, f32 statistics.

    The loops are read back piece by piece; a body that is not exactly the
    block's pieces, each reading the one before, is an error. The tiling is
    the strategy's: `chunk_rows`, `gemm_block_n` and `gemm_stages` (0: per
    GEMM, 128-wide tiles and as
    many stages as fit), and the attention's `kv_block` and `stages`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTFFNToSM90 : Pass<"bpt-ffn-to-sm90", "::mlir::ModuleOp"> {
  let summary = "Lower FFN chunk loops to Hopper (sm_90a) GEMM kernels";
  let description = [{
    Replaces each `#bpt.chunk_loop<ffn>` (built by `bpt-chunk-ffn` from a
    `bpt.ffn`) whose `#bpt.strategy` takes the `wgmma` path by a host loop
    of two GEMM kernel launches per chunk of `chunk_rows` rows, the kernels
    built for sm_90a in `gpu.module @bpt_sm90`:
    `u = act(x[chunk] · W_in)` with the activation in the epilogue, then
    `y[chunk] = u · W_out`. The `[chunk, ffn]` intermediate is the only one,
    so memory has no sequence × ffn term. Each GEMM kernel computes 128 × BN
    tiles (BN = 256 or 128) with a TMA producer warpgroup, a ring of
    shared-memory stages under mbarriers, and two wgmma consumer warpgroups;
    the row offsets of A and C are `i32` kernel arguments.

    Gated activations (SwiGLU, GeGLU) take a GEMM with two B operands,
    `W_in` and `W_gate`, and two accumulators (128-wide tiles).

    The GEMM tiling is the strategy's `gemm_block_n` and `gemm_stages` (0:
    128-wide tiles, as many stages as fit).
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def BPTLowerTensorMapArgs : Pass<"bpt-lower-tensor-map-args",
                                 "::mlir::gpu::GPUModuleOp"> {
  let summary = "Kernel arguments of tensor-map type become pointers";
  let description = [{
    A kernel receives a TMA descriptor as the address of a 128-byte tensor
    map in device memory. `convert-gpu-to-nvvm` has no type conversion for
    `!nvgpu.tensormap.descriptor` arguments, so this pass rewrites them to
    `!llvm.ptr` before it, with a cast back for the body's uses (removed by
    `reconcile-unrealized-casts` once the uses are lowered).
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // BPT_CONVERSION_PASSES_TD
