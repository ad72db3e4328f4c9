// RUN: bpt-opt %s --split-input-file --bpt-select-strategy=chunk-rows=2048 --bpt-chunk-ffn --bpt-ffn-to-sm90 | FileCheck %s

// 256 x 128 tiles (hopper.md version 25), the default for GEMMs whose
// launch rows are whole 256-row tiles, whose tiles would fill more than
// half of the 132 multiprocessors and whose epilogue allows them: one
// 384-thread block a multiprocessor (producer warpgroup, setmaxnreg), four
// 48 KiB stages (the producer loads A's [256, 64] box and B's two
// [64, 64] boxes a stage), A's tensor map boxes of 256 rows; each consumer
// warpgroup computes 128 rows, two m64n128k16 wgmmas a k16 step (8 a K
// step). Persistent (`_p`, hopper.md version 27): min(tiles, 132) blocks,
// block b taking tiles b, b + grid, ... (the producer's and the consumers'
// loops over tiles carry the ring's step count), and each consumer stages
// C 64 rows at a time in an area of its own after the stages (230464
// bytes of shared memory) and stores it by TMA (version 28): C's argument
// is its tensor map of [64, 64] boxes; per half, the consumer's first
// thread waits until its last box stores have read the area (the wait
// takes the half's 32 packed values, computed before it), a warpgroup
// barrier, 32 4-byte shared stores a thread, the async-proxy fence, a
// barrier, then two box stores (128 columns) and their commit; no global
// stores. The last tile's stores complete before the block ends.
// CHECK-LABEL: func.func @gelu
// CHECK: %[[XMAP:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c256, %c64]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a4096_c2048_n2048_k1280_gelu_m256_p blocks in (%c128, %c1{{.*}}, %{{.+}}) threads in (%c384, %{{.+}}, %{{.+}}) dynamic_shared_memory_size %c230464_i32 args(%[[XMAP]] : {{.+}}, %{{.+}} : {{.+}}, %{{.+}} : !nvgpu.tensormap.descriptor<tensor = memref<64x64xbf16, {{.+}}>, %c0_i32 : i32, %c0_i32{{.*}} : i32)
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c4096_n1280_k2048_m256_p blocks in (%c80{{.*}}, %c1{{.*}}, %{{.+}}) threads in (%c384
// CHECK-LABEL: gpu.func @gemm_sm90_a4096_c2048_n2048_k1280_gelu_m256_p(
// CHECK-SAME: %arg2: !nvgpu.tensormap.descriptor<tensor = memref<64x64xbf16
// CHECK-SAME: nvvm.maxntid = array<i32: 384, 1, 1>, nvvm.minctasm = 1 : i32
// CHECK: nvvm.setmaxregister decrease 24
// CHECK: %[[PB:.+]] = gpu.block_id x
// CHECK: %[[PB32:.+]] = arith.index_castui %[[PB]]
// CHECK: scf.for %{{.+}} = %[[PB32]] to %c128_i32{{.*}} step %c128_i32{{.*}} iter_args(%{{.+}} = %c0_i32{{.*}}) -> (i32)
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.+}}, %c49152_i32
// CHECK-COUNT-3: nvvm.cp.async.bulk.tensor.shared.cluster.global
// CHECK: nvvm.setmaxregister increase 240
// CHECK: scf.for %{{.+}} = %{{.+}} to %c128_i32{{.*}} step %c128_i32{{.*}} iter_args(%{{.+}} = %c0_i32{{.*}}) -> (i32)
// CHECK: nvvm.wgmma.fence.aligned
// CHECK-COUNT-8: nvvm.wgmma.mma_async
// CHECK-NOT: nvvm.wgmma.mma_async
// CHECK: "wgmma.wait_group.sync.aligned 0;"
// CHECK-NOT: llvm.store
// CHECK: "cp.async.bulk.wait_group.read 0;", "r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r,r"
// CHECK: "bar.sync 2, 128;"
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-32: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr<3>
// CHECK-NOT: llvm.store
// CHECK: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// CHECK: "bar.sync 2, 128;"
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.global.shared.cta %{{.+}}, %{{.+}}, box[
// CHECK-NEXT: nvvm.cp.async.bulk.commit.group
// CHECK-NOT: llvm.store
// CHECK: "cp.async.bulk.wait_group.read 0;"
// CHECK: "bar.sync 2, 128;"
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-32: llvm.store %{{.+}}, %{{.+}} {alignment = 4 : i64} : i32, !llvm.ptr<3>
// CHECK-NOT: llvm.store
// CHECK: nvvm.fence.proxy
// CHECK: "bar.sync 2, 128;"
// CHECK: "bar.sync 1, 128;"
// CHECK-COUNT-2: nvvm.cp.async.bulk.tensor.global.shared.cta %{{.+}}, %{{.+}}, box[
// CHECK-NEXT: nvvm.cp.async.bulk.commit.group
// CHECK-NOT: llvm.store
// CHECK: scf.yield
// CHECK: nvvm.cp.async.bulk.wait_group 0
// CHECK-NOT: read
// CHECK: gpu.return
func.func @gelu(%x: tensor<2x2048x1280xbf16>, %w1: tensor<1280x2048xbf16>,
                %w2: tensor<2048x1280xbf16>) -> tensor<2x2048x1280xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2x2048x1280xbf16>, tensor<1280x2048xbf16>, tensor<2048x1280xbf16>)
      -> tensor<2x2048x1280xbf16>
  return %0 : tensor<2x2048x1280xbf16>
}

// -----

// More tiles than multiprocessors: 2048 rows of N 8192 are 512 tall tiles,
// so the grid is the chip's 132 blocks, each taking every 132nd tile.
// CHECK-LABEL: func.func @many
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c2048_n8192_k1024_gelu_m256_p blocks in (%c132, %c1
// CHECK-LABEL: gpu.func @gemm_sm90_a2048_c2048_n8192_k1024_gelu_m256_p(
// CHECK: scf.for %{{.+}} = %{{.+}} to %c512_i32{{.*}} step %c132_i32{{.*}} iter_args(%{{.+}} = %c0_i32{{.*}}) -> (i32)
// CHECK: scf.for %{{.+}} = %{{.+}} to %c512_i32{{.*}} step %c132_i32{{.*}} iter_args(%{{.+}} = %c0_i32{{.*}}) -> (i32)
func.func @many(%x: tensor<2048x1024xbf16>, %w1: tensor<1024x8192xbf16>,
                %w2: tensor<8192x1024xbf16>) -> tensor<2048x1024xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<2048x1024xbf16>, tensor<1024x8192xbf16>, tensor<8192x1024xbf16>)
      -> tensor<2048x1024xbf16>
  return %0 : tensor<2048x1024xbf16>
}

// -----

// 3000 rows in chunks of at most 2048, evened out: 1536 (whole 256-row
// tiles) and a ragged 1464. Both up GEMMs take 256-row tiles on x's one
// map of 256-row boxes: the ragged chunk's C (the intermediate's leading
// 1464 rows, its own store map) ends with the launch, so the TMA store
// drops the last tile's 72 rows past it, and 1536 padded rows are no more
// than its 128-row tiles' (GemmConfig::clipsRaggedRows). The ragged down
// GEMM writes the output's last rows, which do not end its C: 128-row
// tiles (two blocks a multiprocessor) with row masks.
// CHECK-LABEL: func.func @tail
// CHECK: %[[X256:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c256, %c64]
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a3000_c1536_n2048_k1536_gelu_m256_p {{.+}} threads in (%c384, {{.+}} args(%[[X256]] :
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1536_c3000_n1536_k2048_m256_p
// CHECK: %[[UTAIL:.+]] = nvgpu.tma.create.descriptor %{{.+}} box[%c64{{.*}}, %c64{{.*}}] : memref<*xbf16> -> <tensor = memref<64x64xbf16
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a3000_c1464_n2048_k1536_gelu_ragged_m256_p blocks in (%c96{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384{{.*}}, {{.+}} args(%[[X256]] : {{.+}}, %{{.+}} : {{.+}}, %[[UTAIL]] :
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a1464_c3000_n1536_k2048_ragged {{.+}} threads in (%c288
func.func @tail(%x: tensor<3000x1536xbf16>, %w1: tensor<1536x2048xbf16>,
                %w2: tensor<2048x1536xbf16>) -> tensor<3000x1536xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<3000x1536xbf16>, tensor<1536x2048xbf16>, tensor<2048x1536xbf16>)
      -> tensor<3000x1536xbf16>
  return %0 : tensor<3000x1536xbf16>
}

// -----

// Tall tiles at most half of the multiprocessors would fill keep 128-row
// tiles: 256 rows of N 1408 are 11 tall tiles against 22 of 128 rows,
// and the down GEMM's (K 5632) split its last wave's tiles 5 ways.
// CHECK-LABEL: func.func @small
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a256_c256_n5632_k1408_gelu blocks in (%c44, %c2,
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a256_c256_n1408_k5632_split22x5 blocks in (%c110,
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a256_c256_n1408_k5632_split22x5_reduce
// CHECK-NOT: _m256
func.func @small(%x: tensor<256x1408xbf16>, %w1: tensor<1408x5632xbf16>,
                 %w2: tensor<5632x1408xbf16>) -> tensor<256x1408xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<256x1408xbf16>, tensor<1408x5632xbf16>, tensor<5632x1408xbf16>)
      -> tensor<256x1408xbf16>
  return %0 : tensor<256x1408xbf16>
}

// -----

// A gated GEMM (two accumulators) keeps 128-row tiles.
// CHECK-LABEL: func.func @swiglu
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a2048_c2048_n256_k128_swiglu_gated_t128x4 {{.+}} threads in (%c384,
func.func @swiglu(%x: tensor<2048x128xbf16>, %w1: tensor<128x256xbf16>,
                  %wg: tensor<128x256xbf16>, %w2: tensor<256x128xbf16>)
    -> tensor<2048x128xbf16> {
  %0 = bpt.ffn swiglu %x, %w1, %w2, gate %wg
      : (tensor<2048x128xbf16>, tensor<128x256xbf16>, tensor<256x128xbf16>,
         tensor<128x256xbf16>) -> tensor<2048x128xbf16>
  return %0 : tensor<2048x128xbf16>
}

// -----

// A ragged launch whose 256-row tiles would pad its 300 rows to 512, a
// third more than 128-row tiles' 384, keeps 128-row tiles although its C
// ends with it (64 tall tiles of N 8192 would fill more than half of the
// multiprocessors).
// CHECK-LABEL: func.func @padding
// CHECK: gpu.launch_func @bpt_sm90::@gemm_sm90_a300_c300_n8192_k1024_gelu_ragged blocks in (%c64{{.*}}, %c3,
// CHECK-NOT: _m256
func.func @padding(%x: tensor<300x1024xbf16>, %w1: tensor<1024x8192xbf16>,
                   %w2: tensor<8192x1024xbf16>) -> tensor<300x1024xbf16> {
  %0 = bpt.ffn gelu %x, %w1, %w2
      : (tensor<300x1024xbf16>, tensor<1024x8192xbf16>, tensor<8192x1024xbf16>)
      -> tensor<300x1024xbf16>
  return %0 : tensor<300x1024xbf16>
}
