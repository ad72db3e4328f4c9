//===- BPTBase.td - bpt dialect definition -----------------*- tablegen -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BPTBASE_TD
#define BPT_DIALECT_BPTBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def BPT_Dialect : Dialect {
  let name = "bpt";
  let summary = "Transformer blocks for blockwise-parallel compilation";
  let description = [{
    The `bpt` dialect expresses transformer blocks at the model level, with
    value semantics on statically shaped tensors of `f32`, `f16` or `bf16`:
    attention, linear projections, feed-forward networks, normalisations and
    a whole pre-norm block. Passes rewrite these ops into the blockwise form
    of the Blockwise Parallel Transformer (Liu & Abbeel, arXiv 2305.19370):
    attention tiled into query and key/value blocks with an online softmax,
    with the feed-forward network and residuals fused into the per-query-block
    loop.

    Residual additions are not a `bpt` op: they are upstream `arith.addf` on
    tensors. Fusion legality is a property of the consumer (is it
    position-wise?), not of its name, and `arith.addf` already carries the
    `Elementwise` trait, folds, and lowers through
    `convert-elementwise-to-linalg`; a dialect op would add nothing to it.

    All shapes are static: bpt compiles a block for given shapes.
  }];
  let cppNamespace = "::bpt";
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
}

class BPT_Op<string mnemonic, list<Trait> traits = []>
    : Op<BPT_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def BPT_ActivationKind : I32EnumAttr<"Activation",
    "feed-forward activation", [
      I32EnumAttrCase<"gelu", 0>,
      I32EnumAttrCase<"gelu_tanh", 1>,
      I32EnumAttrCase<"relu", 2>,
      I32EnumAttrCase<"silu", 3>,
      I32EnumAttrCase<"swiglu", 4>,
      I32EnumAttrCase<"geglu", 5>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

def BPT_ActivationAttr : EnumAttr<BPT_Dialect, BPT_ActivationKind, "activation"> {
  let summary = "feed-forward activation: gelu, gelu_tanh, relu, silu, or "
                "the gated swiglu and geglu";
}

def BPT_NormKind : I32EnumAttr<"NormKind", "normalisation kind", [
      I32EnumAttrCase<"layer_norm", 0>,
      I32EnumAttrCase<"rms_norm", 1>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

def BPT_NormKindAttr : EnumAttr<BPT_Dialect, BPT_NormKind, "norm"> {
  let summary = "normalisation kind: layer_norm or rms_norm";
}


def BPT_KernelPath : I32EnumAttr<"KernelPath",
    "the kind of kernel a strategy lowers to", [
      I32EnumAttrCase<"portable", 0>,
      I32EnumAttrCase<"mma_sync", 1>,
      I32EnumAttrCase<"wgmma", 2>,
      I32EnumAttrCase<"rowwise", 3>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

def BPT_ChunkLoopKind : I32EnumAttr<"ChunkLoopKind",
    "what one iteration of a chunk loop computes", [
      I32EnumAttrCase<"kv_projection", 0>,
      I32EnumAttrCase<"block", 1>,
      I32EnumAttrCase<"ffn", 2>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

def BPT_AttentionGradPart : I32EnumAttr<"AttentionGradPart",
    "which gradients one nest of an attention backward computes", [
      I32EnumAttrCase<"key_value", 0>,
      I32EnumAttrCase<"query", 1>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

// Plain C++ values printed as MLIR writes them: `true`/`false`, and a float
// that parses back to the same double.
def BPT_BoolParameter : AttrOrTypeParameter<"bool", "true or false"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<bool> {
    ::llvm::StringRef word;
    if ($_parser.parseKeyword(&word) || (word != "true" && word != "false"))
      return $_parser.emitError($_parser.getCurrentLocation(),
                                "expected true or false"), ::mlir::failure();
    return word == "true";
  }() }];
  let printer = [{ $_printer << ($_self ? "true" : "false") }];
}

def BPT_F64Parameter : AttrOrTypeParameter<"::llvm::APFloat", "a 64-bit float"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = [{ $_printer.printFloat($_self) }];
  let comparator = [{ $_lhs.bitwiseIsEqual($_rhs) }];
}

def BPT_StrategyAttr : AttrDef<BPT_Dialect, "Strategy"> {
  let mnemonic = "strategy";
  let summary = "the kernel strategy chosen for an op or a blockwise loop nest";
  let description = [{
    Set by `bpt-select-strategy` as the discardable attribute `bpt.strategy`
    on model-level ops, carried by `bpt-blockwise` onto the loop nests it
    builds from them, and read by the conversions: the path (`wgmma`,
    `mma_sync`, `rowwise` or `portable`), the chip it was chosen for, and
    the tiling.
    A zero field does not apply to the path (or, for `gemm_stages` and
    `gemm_split`, means the tiling's choice, per GEMM).

    - attention: `q_block` query rows and `kv_block` key/value rows per
      block (the blockwise nest's tiling, which the kernel keeps), `stages`
      of the K/V ring and `warps` per thread block;
    - FFN, projection, block on tensor cores: `chunk_rows` rows per chunk,
      `gemm_block_n` GEMM tile columns, `gemm_stages`, `gemm_split` (the
      most parts a mostly idle last wave's tiles are split into along K: 1
      none); a block also has its attention's `kv_block` and `stages`;
    - portable: `q_block` and `kv_block` of the blockwise loops;
    - rowwise (the norms: one warp a row, `bpt-norm-to-rowwise`): no
      tiling;
    - attention split over the keys (decode and short queries): `kv_splits`
      key/value ranges, each a partial online softmax, then a combine.
      The query heads of a key/value group and all their query rows are
      packed as the rows of one tile (`q_block` is that tile's kernel row
      count, at least heads per group × query rows); `kv_block` and
      `stages` are the kernel's as above. 0 (the default, not printed):
      not split.

    Example:

    ```mlir
    %o = bpt.attention %q, %k, %v causal {bpt.strategy = #bpt.strategy<wgmma,
        chip = "sm_90a", q_block = 128, kv_block = 128, stages = 2, warps = 12>}
        : (tensor<1x16x4096x128xbf16>, tensor<1x16x4096x128xbf16>,
           tensor<1x16x4096x128xbf16>) -> tensor<1x16x4096x128xbf16>
    ```
  }];
  let parameters = (ins
    EnumParameter<BPT_KernelPath>:$path,
    StringRefParameter<"the chip the strategy was chosen for">:$chip,
    DefaultValuedParameter<"int64_t", "0", "query rows per block">:$q_block,
    DefaultValuedParameter<"int64_t", "0", "key/value rows per block">:$kv_block,
    DefaultValuedParameter<"int64_t", "0", "K/V ring stages">:$stages,
    DefaultValuedParameter<"int64_t", "0", "warps per thread block">:$warps,
    DefaultValuedParameter<"int64_t", "0", "rows per chunk">:$chunk_rows,
    DefaultValuedParameter<"int64_t", "0", "GEMM tile columns">:$gemm_block_n,
    DefaultValuedParameter<"int64_t", "0", "GEMM stages">:$gemm_stages,
    DefaultValuedParameter<"int64_t", "0", "GEMM tail split parts">:$gemm_split,
    DefaultValuedParameter<"int64_t", "0", "attention key/value splits">:$kv_splits
  );
  let assemblyFormat = [{
    `<` $path `,` struct($chip, $q_block, $kv_block, $stages, $warps,
                         $chunk_rows, $gemm_block_n, $gemm_stages,
                         $gemm_split,
                         $kv_splits) `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The name of the discardable attribute that holds a strategy.
    static constexpr ::llvm::StringLiteral kAttrName = "bpt.strategy";
    /// The strategy recorded on `op`, or null.
    static StrategyAttr get(::mlir::Operation *op);
    /// The strategy of the innermost op around `op` that carries one (a
    /// blockwise nest or chunk loop), or null. An op inside such a loop is
    /// a tile of it, lowered with it: the loop's strategy covers it.
    static StrategyAttr getEnclosing(::mlir::Operation *op);
  }];
}

def BPT_AttentionNestAttr : AttrDef<BPT_Dialect, "AttentionNest"> {
  let mnemonic = "attention_nest";
  let summary = "marks the blockwise loop nest of one attention";
  let description = [{
    `bpt-tile-attention` tags the `scf.forall` over (batch, query head,
    query block) it builds from a `bpt.attention` with this attribute (as
    `bpt.nest`), together with the op's strategy: the nest's body computes
    that attention's online softmax for one query block, and a kernel
    conversion may lower the whole nest to one kernel with the same tiling.
    It records what the body's arithmetic no longer shows plainly: the
    causal mask and the softmax scale.

    Example: `{bpt.nest = #bpt.attention_nest<causal = true, scale = 0.125>}`
  }];
  let parameters = (ins BPT_BoolParameter:$causal, BPT_F64Parameter:$scale);
  let assemblyFormat = "`<` struct($causal, $scale) `>`";
  let extraClassDeclaration = [{
    static constexpr ::llvm::StringLiteral kAttrName = "bpt.nest";
  }];
}

def BPT_SplitKVPart : I32EnumAttr<"SplitKVPart",
    "which half of an attention split over its keys a nest computes", [
      I32EnumAttrCase<"partial", 0>,
      I32EnumAttrCase<"combine", 1>
    ]> {
  let cppNamespace = "::bpt";
  let genSpecializedAttr = 0;
}

def BPT_SplitKVNestAttr : AttrDef<BPT_Dialect, "SplitKVNest"> {
  let mnemonic = "split_kv_nest";
  let summary = "marks a nest of an attention split over its keys";
  let description = [{
    `bpt-tile-attention` builds two `scf.forall` nests from a
    `bpt.attention` whose strategy has `kv_splits` > 0 (decode and short
    queries, FlashDecoding's schedule) and tags each with this attribute
    (as `bpt.nest`) and the op's strategy:

    - `partial`: over (batch, key/value head, split); the body packs the
      query heads of the group and all their query rows as the rows of one
      tile ([heads per group × Sq, D]: row r is head r / Sq of the group,
      query r % Sq), runs the online softmax over the split's key/value
      blocks only, and writes the tile normalised in f32 with each row's
      log-sum-exp (natural log; -inf where the split has no visible key)
      into [B, Hkv, splits, rows, D] and [B, Hkv, splits, rows];
    - `combine`: over (batch, key/value head); per row, M = max over
      splits of lse, w_s = exp(lse_s − M), out = Σ w_s·O_s / Σ w_s (0 for
      a row that sees no key), in the element type.

    Keys are read once per group, not once per query head. A kernel
    conversion lowers the partial nest to a split kernel and the combine
    nest to a combine kernel; the partials are workspace.

    Example: `{bpt.nest = #bpt.split_kv_nest<partial, causal = true, scale = 0.125>}`
  }];
  let parameters = (ins EnumParameter<BPT_SplitKVPart>:$part,
                        BPT_BoolParameter:$causal, BPT_F64Parameter:$scale);
  let assemblyFormat = "`<` $part `,` struct($causal, $scale) `>`";
}

def BPT_AttentionGradNestAttr : AttrDef<BPT_Dialect, "AttentionGradNest"> {
  let mnemonic = "attention_grad_nest";
  let summary = "marks a blockwise loop nest of one attention backward";
  let description = [{
    `bpt-tile-attention` builds two `scf.forall` nests from a
    `bpt.attention_grad` (after a pre-pass D = rowsum(dO ∘ O)) and tags each
    with this attribute (as `bpt.nest`) and the op's strategy:

    - `key_value`: over (batch, key/value head, key block); the body loops
      over the query heads of the group and the query blocks that see the
      key block, recomputes P and dS, and accumulates dK and dV;
    - `query`: over (batch, query head, query block); the body loops over
      the key blocks the query block sees and accumulates dQ = dS·K.

    Both nests are deterministic. A kernel conversion may lower the pair to
    one kernel that computes dQ inside the key/value nest (the dS tiles are
    the same) and sums it across key blocks by atomic adds; the attribute
    records what the arithmetic no longer shows plainly: the causal mask
    and the softmax scale.

    Example: `{bpt.nest = #bpt.attention_grad_nest<key_value, causal = true, scale = 0.125>}`
  }];
  let parameters = (ins EnumParameter<BPT_AttentionGradPart>:$part,
                        BPT_BoolParameter:$causal, BPT_F64Parameter:$scale);
  let assemblyFormat = "`<` $part `,` struct($causal, $scale) `>`";
}

def BPT_ChunkLoopAttr : AttrDef<BPT_Dialect, "ChunkLoop"> {
  let mnemonic = "chunk_loop";
  let summary = "marks a loop over chunks of rows";
  let description = [{
    The row-wise work that the tensor-core paths run chunk by chunk, as
    `scf.forall` loops over chunks of `chunk_rows` rows of the flattened
    [batch × sequence, hidden] input, tagged with this attribute (as
    `bpt.nest`) and the strategy.

    - `ffn`: `bpt-chunk-ffn` tiles a `bpt.ffn` with a tensor-core strategy
      into a loop with the FFN of one chunk in its body; the [rows, ffn]
      intermediate exists for one chunk at a time.

    `bpt-decompose-block` expands a `bpt.transformer_block` whose strategy
    is `wgmma` into two such loops:

    - `kv_projection`: norm1 and the key and value projections of the
      chunk, written into [rows, kv width] tensors, the only ones that span
      the sequence;
    - `block`: for the chunk's queries, norm1, the query projection, an
      attention nest over the keys of the chunk's sequence (causal diagonal
      at the chunk's position), the output projection and residual, norm2,
      the FFN and the second residual.

    No buffer of a block's loops has an S × S or S × ffn term. The kernel
    conversions (`bpt-block-to-sm90`, `bpt-ffn-to-sm90`, `bpt-ffn-to-sm80`)
    map each loop to a host loop of kernel launches, one per op of its
    body; the CPU path runs the same loops.

    Example: `{bpt.nest = #bpt.chunk_loop<block>}`
  }];
  let parameters = (ins EnumParameter<BPT_ChunkLoopKind>:$kind);
  let assemblyFormat = "`<` $kind `>`";
}

#endif // BPT_DIALECT_BPTBASE_TD
