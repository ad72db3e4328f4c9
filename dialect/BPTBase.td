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

#endif // BPT_DIALECT_BPTBASE_TD
