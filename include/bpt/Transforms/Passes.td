//===- Passes.td - bpt transformation passes ---------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TRANSFORMS_PASSES_TD
#define BPT_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def BPTDecomposeBlock : Pass<"bpt-decompose-block", "::mlir::func::FuncOp"> {
  let summary = "Expand bpt.transformer_block into its primitive ops";
  let description = [{
    Rewrites every `bpt.transformer_block` into the model-level primitives it
    stands for: the first norm, the Q/K/V projections (`bpt.linear`), the
    split into heads (`tensor.expand_shape` + `linalg.transpose` to
    `[B, heads, S, D]`), `bpt.attention`, the merge of heads, the output
    projection, the first residual (`arith.addf`), the second norm,
    `bpt.ffn`, and the second residual.

    A block whose `#bpt.strategy` takes the `wgmma` path becomes its chunk
    loops instead (`#bpt.chunk_loop`): a loop over chunks of `chunk_rows`
    rows computing norm1 and the key/value projections, then a loop over
    the same chunks computing the rest of the block for the chunk's
    queries, with the attention as a blockwise nest (the strategy's
    `q_block` and `kv_block`) against the keys of the chunk's sequence.
    `bpt-block-to-sm90` maps these loops to kernel launches; the CPU path
    runs them as loops. The pieces of a block with the `portable` strategy
    inherit it, so that `bpt-fuse-ffn-residual` fuses them; those of an
    `mma_sync` block (on mma.sync chips, and on sm_90a where the wgmma
    block kernels refuse it) are left for `bpt-select-strategy` to decide
    one by one.

    Example:

    ```mlir
    %y = bpt.transformer_block %x norm1(%g1) attention(%wq, %wk, %wv, %wo)
        norm2(%g2) ffn(%w1, %w2) heads(8) kv_heads(8) activation(gelu)
        norm(rms_norm) : (...) -> tensor<1x256x512xf32>
    ```

    becomes

    ```mlir
    %h = bpt.rms_norm %x, %g1 : ...
    %q = bpt.linear %h, %wq : ...
    %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [1, 256, 8, 64] : ...
    %qh = linalg.transpose ins(%q4 : ...) outs(%e : ...) permutation = [0, 2, 1, 3]
    ...
    %a = bpt.attention %qh, %kh, %vh : ...
    ...
    %r = arith.addf %x, %o : tensor<1x256x512xf32>
    %h2 = bpt.rms_norm %r, %g2 : ...
    %f = bpt.ffn gelu %h2, %w1, %w2 : ...
    %y = arith.addf %r, %f : tensor<1x256x512xf32>
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def BPTChunkFFN : Pass<"bpt-chunk-ffn", "::mlir::func::FuncOp"> {
  let summary = "Tile tensor-core FFNs into loops over chunks of rows";
  let description = [{
    Rewrites each `bpt.ffn` whose `#bpt.strategy` takes a tensor-core path
    (`wgmma` or `mma_sync`) into its blockwise form: an `scf.forall` over
    chunks of the strategy's `chunk_rows` rows of the input viewed as
    [rows, hidden], tagged `#bpt.chunk_loop<ffn>` and the strategy, with the
    FFN of one chunk in its body, so that the [rows, ffn] intermediate
    exists for one chunk at a time. `bpt-ffn-to-sm90` / `-sm80` map the
    loop to a host loop of two GEMM launches per chunk; the CPU runs it as
    a loop. Portable FFNs and FFNs inside another blockwise loop stay as
    they are.

    Example:

    ```mlir
    %y = bpt.ffn gelu %x, %w1, %w2 {bpt.strategy = #bpt.strategy<wgmma, ...,
        chunk_rows = 256, ...>} : (tensor<1x1024x512xbf16>, ...) -> ...
    ```

    becomes

    ```mlir
    %rows = tensor.collapse_shape %x [[0, 1], [2]] : ... into tensor<1024x512xbf16>
    %f = scf.forall (%c) in (4) shared_outs(%o = %e) -> (tensor<1024x512xbf16>) {
      %r0 = arith.muli %c, %c256 : index
      %xc = tensor.extract_slice %rows[%r0, 0] [256, 512] [1, 1] : ...
      %fc = bpt.ffn gelu %xc, %w1, %w2 : (tensor<256x512xbf16>, ...) -> ...
      scf.forall.in_parallel {
        tensor.parallel_insert_slice %fc into %o[%r0, 0] [256, 512] [1, 1] : ...
      }
    } {bpt.nest = #bpt.chunk_loop<ffn>, bpt.strategy = ...}
    %y = tensor.expand_shape %f [[0, 1], [2]] output_shape [1, 1024, 512] : ...
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def BPTTileAttention : Pass<"bpt-tile-attention", "::mlir::func::FuncOp"> {
  let summary = "Tile bpt.attention (online softmax) and bpt.attention_grad into query/key-value blocks";
  let description = [{
    Rewrites every `bpt.attention` into the blockwise form of the Blockwise
    Parallel Transformer: an `scf.forall` over (batch, query head, query
    block); inside, `scf.for` loops over key/value blocks carrying the
    running row max `m`, the running row sum `l` and an unnormalised `f32`
    accumulator, each rescaled by `exp2(m_old - m_new)` per block; one
    normalisation `acc / l` at the end (0 for a row that saw no key).

    - Scores use `exp2` with `scale · log2(e)` folded into one multiply.
    - Causal: key/value blocks wholly above the bottom-right-aligned diagonal
      are never visited (the loop bounds depend on the query block); blocks
      wholly below it run unmasked; only the diagonal blocks (and a ragged
      key tail) are masked, in a second loop.
    - Ragged tails: a query or key/value block that runs past the sequence is
      copied into a zeroed tile of the full block size, so every tile keeps a
      static shape; masking drops the padded keys and only the valid query
      rows are written back.
    - GQA/MQA: query head `h` reads key/value head `h / (Hq / Hkv)` in
      place; K and V are never repeated.

    - The log-sum-exp result, where asked for: `(m + log2 l) · ln 2` per
      row (`-inf` for a row that saw no key), a second result of the nest.
    - Split over the keys (a strategy with `kv_splits`, decode and short
      queries): two nests tagged `#bpt.split_kv_nest`. The partial nest
      over (batch, key/value head, split) packs the group's query heads
      and all their rows as one tile (a row's causal position is its index
      modulo Sq) and runs the online softmax over the split's key blocks,
      writing the rows normalised in f32 and their log-sum-exp; the
      combine nest over (batch, query head, query row) weighs each split
      by exp(lse − max lse). Not with a log-sum-exp result, nor on wgmma.

    `bpt.attention_grad` becomes its blockwise backward: the row sums
    `D = rowsum(dO ∘ O)`; an `scf.forall` over (batch, key/value head, key
    block) accumulating dK and dV over the group's query heads and the
    query blocks that see the key block (P recomputed from the saved
    log-sum-exp; causal query blocks that cannot see it are skipped); and an
    `scf.forall` over (batch, query head, query block) accumulating dQ over
    the key blocks it sees. dQ is a second pass that recomputes P, not a
    sum by atomics: every tile is written by one iteration, its sums in a
    fixed order, so the gradients are deterministic.

    No tensor larger than `q-block × kv-block` scores exists. The loops carry
    `bpt.q_block` and `bpt.kv_block` attributes with the (clamped) sizes.
  }];
  let options = [
    Option<"qBlock", "q-block", "int64_t", /*default=*/"64",
           "Query rows per block (clamped to the query length)">,
    Option<"kvBlock", "kv-block", "int64_t", /*default=*/"64",
           "Key/value rows per block (clamped to the key length)">,
    Option<"reportBlockSizes", "report-block-sizes", "bool",
           /*default=*/"true",
           "Remark where a q-block / kv-block given to this pass is "
           "larger than the sequence it tiles and clamped "
           "(pipelines set it from whether their own were given)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def BPTFuseFFNResidual : Pass<"bpt-fuse-ffn-residual", "::mlir::func::FuncOp"> {
  let summary = "Fuse the position-wise consumers of attention into its query-block loop";
  let description = [{
    For every `bpt.attention` whose heads are merged back into
    `[batch, seq, heads · head_dim]` (`linalg.transpose [0, 2, 1, 3]` +
    `tensor.collapse_shape`, as `bpt-decompose-block` emits) and then flow
    into position-wise consumers — output projection, residual `arith.addf`,
    norm, FFN, residual — builds one `scf.forall` over (batch, query block).
    Per query block it computes the attention of all heads (an `scf.for` over
    heads, each head's online-softmax tile written at its columns of a
    `[q-block, heads · head_dim]` tile), then runs every fused consumer on
    `[q-block, N]` tiles. The FFN therefore runs one query block at a time,
    and no `S × ffn_width` tensor (nor `S × S`) exists.

    Legality: a consumer moves only if it is position-wise (`bpt.linear`,
    `bpt.ffn`, `bpt.layer_norm`, `bpt.rms_norm` through their input, or an
    elementwise op on equally shaped tensors), its other row operands are
    `[batch, seq, N]` values, and it is in the same block. Values still used
    after the chain become results of the loop. An attention that cannot be
    fused is left as it is, with a remark that says why; run
    `bpt-tile-attention` afterwards to tile it on its own.
  }];
  let options = [
    Option<"qBlock", "q-block", "int64_t", /*default=*/"64",
           "Query rows per block (clamped to the query length)">,
    Option<"kvBlock", "kv-block", "int64_t", /*default=*/"64",
           "Key/value rows per block (clamped to the key length)">,
    Option<"reportBlockSizes", "report-block-sizes", "bool",
           /*default=*/"true",
           "Remark where a q-block / kv-block given to this pass is "
           "larger than the sequence it tiles and clamped "
           "(pipelines set it from whether their own were given)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

def BPTReportMemory : Pass<"bpt-report-memory", "::mlir::func::FuncOp"> {
  let summary = "Report the peak bytes of live intermediate buffers";
  let description = [{
    On bufferized IR, emits a remark on each function with the peak number
    of bytes of simultaneously live allocations (`memref.alloc`,
    `memref.alloca`) and a note per buffer live at the peak. Function
    arguments, inputs and caller-provided outputs alike, are not counted. A
    loop body counts once: the peak is that of one sequential execution.
    This is the number behind BPT's memory claim: for a fused block it does
    not grow with `S × ffn_width` or `S × S`.

    Example: `bpt-opt --bpt-blockwise --bpt-to-cpu=report-memory=true`, or
    on its own after `one-shot-bufferize`:

    ```
    remark: bpt memory: peak 1835008 bytes of live intermediate buffers (12 allocations)
    ```
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def BPTReadOnlyInputs : Pass<"bpt-readonly-inputs", "::mlir::func::FuncOp"> {
  let summary = "Mark tensor arguments as not writable for bufferization";
  let description = [{
    Sets `bufferization.writable = false` on every tensor argument of public
    functions, so that one-shot bufferization never computes a result in
    place of a caller's input (a residual `arith.addf %x, %y` would otherwise
    overwrite `%x`'s buffer). Inputs stay the caller's; outputs are
    separate buffers.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect"];
}

def BPTRematerialize : Pass<"bpt-rematerialize", "::mlir::func::FuncOp"> {
  let summary = "Compute cheap values again where they are read again much "
                "later";
  let description = [{
    Before bufferization: a value of the function body computed by linalg
    ops on tensors alone (elementwise chains, reductions, transposes,
    fills) or by norms left whole for their row kernel (at most `max-ops`
    such ops) from other values (its leaves) and
    read, directly or through expand/collapse_shape views, at places more
    than `min-distance` ops apart gets the computation cloned just before
    each such later read, provided that every leaf is read at or after
    that point anyway (or is a function argument). The buffer then dies
    after its earlier reads instead of living across the gap, at the cost
    of repeating the computation. In a training step these are the first
    norm's output (read by the q/k/v projections and by their weight
    gradients at the end), the second norm's (read by the FFN and by
    `ffn_grad`), and the token-major attention output (read by the output
    projection and by its weight gradient): [S, hidden] buffers alive
    across most of the step. Results are unchanged: the same ops on the
    same values.

    With `projections`, `bpt.linear` ops count as computations that may be
    repeated (a GEMM each: a trade of time for memory, off by default).
    bpt-to-nvvm runs the pass so at the end of its blockwise stage when
    asked (`recompute-projections`), after the last CSE that would merge
    the copies again: a training step's query, key and value projections
    are then repeated just before the attention's gradient.
  }];
  let options = [
    Option<"minDistance", "min-distance", "int64_t", /*default=*/"16",
           "Reads at most this many ops after the previous one share its "
           "value">,
    Option<"maxOps", "max-ops", "int64_t", /*default=*/"12",
           "The most linalg ops and norms one recomputation repeats">,
    Option<"projections", "projections", "bool", /*default=*/"false",
           "Projections (bpt.linear, not yet lowered) may be repeated too: "
           "a training step's query, key and value are then computed "
           "again where the attention's gradient reads them, instead of "
           "living across the FFN's backward (three GEMMs for three "
           "[S, hidden] buffers)">
  ];
  let dependentDialects = ["::mlir::tensor::TensorDialect",
                           "::mlir::linalg::LinalgDialect"];
}

def BPTSplitEmptyTensors : Pass<"bpt-split-empty-tensors", "::mlir::func::FuncOp"> {
  let summary = "Give each use of a tensor.empty an empty tensor of its own";
  let description = [{
    Before one-shot bufferization: a `tensor.empty` of the function body
    used in the body (CSE merges identical ones) gets a clone for each such
    use, placed just before it (empties inside loop nests, the kernels'
    tiles, are left alone). The placement makes each buffer live from its
    first writer rather than from the merged op's position, which in a
    long training function kept buffers of the last query chunk allocated
    from the start. Two ops
    that write into the same empty tensor bufferize in place into one
    allocation when the analysis sees no read of the first result after the
    second write; a tensor-core kernel's operand is read through
    `bufferization.to_buffer` (read_only), which that analysis misses, so
    without this the block's training step wrote dO's head-split transpose
    into V's buffer before the attention backward read V.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def BPTDistinctResults : Pass<"bpt-distinct-results", "::mlir::func::FuncOp"> {
  let summary = "Give each buffer a function returns a buffer of its own";
  let description = [{
    On bufferized IR, before `buffer-results-to-out-params`: where a
    `func.return` returns the same buffer more than once (`return %a, %a`,
    e.g. after CSE merged two equal ops), each repeat is replaced by a fresh
    buffer holding a copy, so that every result becomes an out-parameter of
    its own. `buffer-results-to-out-params` assumes distinct results and
    crashes otherwise. A repeated buffer without the identity layout is an
    error.

    Example: `return %a, %a : memref<4xf32>, memref<4xf32>` becomes

    ```mlir
    %copy = memref.alloc() : memref<4xf32>
    memref.copy %a, %copy : memref<4xf32> to memref<4xf32>
    return %a, %copy : memref<4xf32>, memref<4xf32>
    ```
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def BPTBuildBackward : Pass<"bpt-build-backward", "::mlir::ModuleOp"> {
  let summary = "Build the training forward and the backward function of a "
                "model-level function";
  let description = [{
    Reverse-mode differentiation over the bpt ops. For each chosen function
    `@f(%args...) -> (%results...)` it adds two public functions and leaves
    `@f` as it is:

    - `@f_train(%args...) -> (%results..., %lse...)`: `@f` with every
      `bpt.attention` also returning its log-sum-exp, which it returns after
      `@f`'s results, one per attention in program order. That is all the
      training forward saves besides its inputs: the backward recomputes
      the rest (docs/design.md, "Training: the block's backward — IR").
    - `@f_grad(%args..., %lse..., %result_grads...) -> (%arg_grads...)`:
      the gradient of a loss with respect to every argument, in argument
      order and of its argument's type, given the loss's gradients with
      respect to `@f`'s results. Its body recomputes `@f`'s forward, then
      walks it backwards, emitting each op's grad op (`bpt.linear_grad`,
      `bpt.ffn_grad`, `bpt.layer_norm_grad`, `bpt.rms_norm_grad`,
      `bpt.attention_grad` with the saved log-sum-exp) and summing the
      gradients of values used more than once with `arith.addf`. An
      argument that no result depends on gets a zero gradient.

    `bpt.transformer_block`s are expanded into their pieces first (as by
    `bpt-decompose-block`). Besides the bpt ops, the body may hold tensor
    `arith.addf`, and `tensor.expand_shape`, `tensor.collapse_shape` and
    `linalg.transpose` (the decomposed block's head split and merge); ops
    that do not depend on an argument (e.g. `tensor.empty`) are recomputed
    and need no gradient. Any other op that depends on an argument is an
    error that names it, and nothing is added to the module.

    With `query-chunk=C` (C > 0), the backward of each block longer than C
    rows is blockwise, as the Blockwise Parallel Transformer trains: the
    recomputed forward expands the block by query chunks of C rows (the
    first norm, keys and values over the whole sequence; the query
    projection, attention against the keys the chunk sees, output
    projection, residuals, second norm and FFN per chunk, the outputs
    concatenated), the reverse sweep of that forward is the backward, and
    each chunk's recomputation is placed just before its gradients. So a
    chunk's intermediates live one chunk at a time; what the chunks share
    (the first norm, keys, values, weights) gets gradients summed across
    chunks, in f32 where a 16-bit type would round each partial sum (the
    keys' and values' prefixes overlap); disjoint row slices are written in
    place. The log-sum-exp a chunk's attention_grad reads is its rows of
    the saved one. `@f_train` is the same either way.

    Example: for

    ```mlir
    func.func @f(%x: tensor<2x8x16xf32>, %w: tensor<16x32xf32>)
        -> tensor<2x8x32xf32> {
      %y = bpt.linear %x, %w : ...
      return %y : tensor<2x8x32xf32>
    }
    ```

    `@f_grad(%x, %w, %dy)` returns `bpt.linear_grad %x, %w, %dy`'s `dx` and
    `dw`; `@f_train` is `@f` (there is no attention).
  }];
  let options = [
    ListOption<"functions", "functions", "std::string",
               "The functions to differentiate (default: every public "
               "function with a body)">,
    Option<"queryChunk", "query-chunk", "int64_t", /*default=*/"0",
           "Rows per query chunk of each transformer block's backward "
           "(0: the whole sequence at once)">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

#endif // BPT_TRANSFORMS_PASSES_TD
