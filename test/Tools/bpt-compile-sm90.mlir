// bpt-compile on sm_90a: eligible attention (bf16/f16, head dim 64 or 128,
// any sequence lengths: bpt-compile-sm90-ragged.test) becomes the kernel of
// bpt-attention-to-sm90; the PTX shows the instructions it is built on.
// RUN: bpt-compile --op=attention --heads=4 --kv-heads=2 --seq=256 --head-dim=128 --dtype=bf16 --causal -o %t
// RUN: FileCheck %s --input-file=%t.ptx --check-prefix=PTX
// RUN: FileCheck %s --input-file=%t.ptx --check-prefix=PRODUCER
// RUN: FileCheck %s --input-file=%t.json --check-prefix=MANIFEST
// RUN: bpt-compile --op=attention --heads=4 --kv-heads=2 --seq=256 --head-dim=128 --dtype=bf16 --causal --no-tensor-cores -o %t.portable
// RUN: FileCheck %s --input-file=%t.portable.json --check-prefix=PORTABLE
// RUN: bpt-compile --op=attention --heads=4 --seq=256 --head-dim=128 --dtype=f32 -o %t.f32 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: FileCheck %s --input-file=%t.f32.json --check-prefix=PORTABLE

// PTX: .target sm_90a
// PTX: .entry attention_sm90_d128_causal(
// PTX: .maxntid 384, 1, 1
// PTX: .minnctapersm 1
// PTX: mbarrier.init.shared.b64
// The loop's blocks are laid out in no fixed order: what the consumers run.
// PTX-DAG: setmaxnreg.inc.sync.aligned.u32 240
// PTX-DAG: mbarrier.try_wait.parity.shared.b64
// PTX-DAG: wgmma.fence.sync.aligned
// S = Q K^T: descriptors for both operands, neither transposed.
// PTX-DAG: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{{.+}}}, %rd{{[0-9]+}}, %rd{{[0-9]+}}, p, 1, 1, 0, 0;
// PTX-DAG: wgmma.commit_group.sync.aligned
// PTX-DAG: wgmma.wait_group.sync.aligned 0
// PTX-DAG: ex2.approx.ftz.f32
// O += P V: P in four registers, V's descriptor transposed.
// PTX-DAG: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {{{.+}}}, {%r{{[0-9]+}}, %r{{[0-9]+}}, %r{{[0-9]+}}, %r{{[0-9]+}}}, %rd{{[0-9]+}}, p, 1, 1, 1;
// PTX-DAG: mbarrier.arrive.shared.b64
// PTX-NOT: .entry

// The producer: Q (two 64-column boxes), then per key block K and V.
// PRODUCER: setmaxnreg.dec.sync.aligned.u32 24
// PRODUCER: mbarrier.arrive.expect_tx.shared.b64
// PRODUCER-COUNT-2: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// PRODUCER: mbarrier.arrive.expect_tx.shared.b64
// PRODUCER-COUNT-2: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// PRODUCER: mbarrier.arrive.expect_tx.shared.b64
// PRODUCER-COUNT-2: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// PRODUCER-NOT: cp.async.bulk.tensor

// MANIFEST: "bpt_manifest_version": 2,
// MANIFEST: "launches": [
// MANIFEST-NEXT: {
// MANIFEST-NEXT: "args": [
// MANIFEST-NEXT: {
// MANIFEST-NEXT: "tensor_map": 0
// MANIFEST: "tensor_map": 1
// MANIFEST: "tensor_map": 2
// MANIFEST: 3
// MANIFEST: "block": [
// MANIFEST-NEXT: 384,
// MANIFEST: "dynamic_shared_memory": 164920,
// MANIFEST: "grid": [
// MANIFEST-NEXT: 8,
// MANIFEST-NEXT: 1,
// MANIFEST-NEXT: 1
// MANIFEST: "kernel": "attention_sm90_d128_causal"
// MANIFEST-NOT: "kernel"
// MANIFEST: "tensor_cores": true,
// MANIFEST: "tensor_maps": [
// MANIFEST-NEXT: {
// MANIFEST-NEXT: "box": [
// MANIFEST-NEXT: 128,
// MANIFEST-NEXT: 64
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "buffer": 0,
// MANIFEST-NEXT: "dtype": "bf16",
// MANIFEST-NEXT: "l2_promotion": "128b",
// MANIFEST-NEXT: "oob_fill": "zero",
// MANIFEST-NEXT: "shape": [
// MANIFEST-NEXT: 1024,
// MANIFEST-NEXT: 128
// MANIFEST-NEXT: ],
// MANIFEST-NEXT: "swizzle": "128b"
// MANIFEST: "buffer": 1,
// MANIFEST: "shape": [
// MANIFEST-NEXT: 512,
// MANIFEST: "buffer": 2,

// PORTABLE: "bpt_manifest_version": 1,
// PORTABLE: "kernel": "attention_kernel"
// PORTABLE: "tensor_cores": false,
// PORTABLE-NOT: tensor_map

// REMARK: remark: attention does not take the wgmma path: element type f32 (the wgmma path takes bf16 and f16)
