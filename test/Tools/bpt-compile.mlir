// bpt-compile: shapes in, PTX + manifest out (the portable path, pinned with
// --no-tensor-cores: this bf16 attention would take the mma.sync kernel).
// RUN: bpt-compile --op=attention --heads=4 --kv-heads=2 --seq=100 --head-dim=64 --dtype=bf16 --causal --no-tensor-cores -o %t
// RUN: FileCheck %s --input-file=%t.json --check-prefix=MANIFEST
// RUN: FileCheck %s --input-file=%t.ptx --check-prefix=PTX
// RUN: bpt-compile --op=attention --heads=4 --seq=100 --emit=mlir --stage=gpu --no-tensor-cores | FileCheck %s --check-prefix=GPU
// RUN: bpt-compile --op=block --seq=64 --hidden=128 --heads=2 --activation=swiglu --norm=layer_norm --emit=mlir --stage=model | FileCheck %s --check-prefix=MODEL
// RUN: bpt-compile %s -o %t.file && FileCheck %s --input-file=%t.file.json --check-prefix=FILE

// The manifest: inputs named after the op's operands, the output written in
// place (no workspace, no copy kernel); the attention kernel's persistent grid takes
// the 4 heads x 2 query blocks (batch 1 folded away), its tiles in > 48 KiB
// of dynamic shared memory.
// MANIFEST: "bpt_manifest_version": 1
// MANIFEST: "bytes": 51200,
// MANIFEST-NEXT: "dtype": "bf16",
// MANIFEST-NEXT: "name": "query",
// MANIFEST-NEXT: "role": "input",
// MANIFEST: "name": "key",
// MANIFEST: "shape": [
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 2,
// MANIFEST-NEXT: 100,
// MANIFEST-NEXT: 64
// MANIFEST: "name": "value",
// MANIFEST: "name": "result",
// MANIFEST-NEXT: "role": "output",
// MANIFEST-NOT: "role": "workspace",
// MANIFEST: "chip": "sm_90a",
// MANIFEST: "features": "+ptx80",
// MANIFEST: "launches": [
// MANIFEST: "block": [
// MANIFEST-NEXT: 256,
// MANIFEST: "dynamic_shared_memory": 116224,
// MANIFEST: "grid": [
// MANIFEST-NEXT: 8,
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 1
// MANIFEST: "kernel": "attention_kernel"
// MANIFEST: "op": "attention",
// MANIFEST: "causal": true,
// MANIFEST: "scale": 0.125,

// PTX: .version 8.0
// PTX: .target sm_90a
// PTX: .visible .entry attention_kernel(
// PTX: bar.sync 0
// PTX-NOT: .entry

// Host code only allocates and launches; every kernel's tiles are views of
// dynamic shared memory, with a barrier after each shared tile operation.
// GPU: func.func @attention
// GPU-NOT: linalg.
// GPU: gpu.launch_func @bpt_kernels::@attention_kernel blocks in ({{.+}}) threads in ({{.+}}) dynamic_shared_memory_size
// GPU: gpu.module @bpt_kernels
// GPU: gpu.func @attention_kernel
// GPU: gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// GPU: memref.view
// GPU: memref.memory_space_cast
// GPU: gpu.barrier

// MODEL: func.func @block(%{{.+}}: tensor<1x64x128xbf16>, %{{.+}}: tensor<128xbf16>, %{{.+}}: tensor<128xbf16>, %{{.+}}: tensor<128x128xbf16>
// MODEL: bpt.transformer_block {{.+}} heads(2) kv_heads(2) activation(swiglu) norm(layer_norm)

// A model-level file: a single bpt op is recognised for the reference.
// FILE: "op": "ffn",
// FILE: "activation": "relu",
func.func @my_ffn(%x: tensor<2x32x64xf32>, %w1: tensor<64x128xf32>, %w2: tensor<128x64xf32>) -> tensor<2x32x64xf32> {
  %0 = bpt.ffn relu %x, %w1, %w2 : (tensor<2x32x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<2x32x64xf32>
  return %0 : tensor<2x32x64xf32>
}
