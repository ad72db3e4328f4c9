// RUN: bpt-opt %s --split-input-file --bpt-map-to-gpu="threads=128" | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-map-to-gpu="threads=128 shared-memory=1024" | FileCheck %s --check-prefix=SPILL

// A blockwise loop becomes one launch of a persistent grid: the loop body in
// every thread, each tile op a loop the threads share, then a barrier; the
// body's buffer is a view of dynamic shared memory.

// CHECK-LABEL: func.func @loop
// CHECK-SAME: (%[[IN:.+]]: memref<2x64xf32>, %[[OUT:.+]]: memref<2x64xf32>)
// CHECK-DAG: %[[SMEM:.+]] = arith.constant 256 : i32
// CHECK-DAG: %[[THREADS:.+]] = arith.constant 128 : index
// CHECK-DAG: %[[GRID:.+]] = arith.constant 2 : index
// CHECK: gpu.launch blocks(%[[BX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %[[GRID]], {{.+}}) threads(%[[TX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %[[THREADS]], {{.+}}) dynamic_shared_memory_size %[[SMEM]]
// CHECK: %[[DSM:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// The block takes iterations bx, bx + grid, ...
// CHECK: scf.for %[[I:.+]] = %[[BX]] to %{{.+}} step %{{.+}} {
// CHECK: %[[VIEW:.+]] = memref.view %[[DSM]][%{{.+}}][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<64xf32, #gpu.address_space<workgroup>>
// CHECK: %[[TILE:.+]] = memref.memory_space_cast %[[VIEW]] : memref<64xf32, #gpu.address_space<workgroup>> to memref<64xf32>
// CHECK: %[[ROW:.+]] = memref.subview %[[IN]][%[[I]], 0]
// The copy into the tile, shared: thread t copies t, t + 128, ...
// CHECK: scf.for %[[P:.+]] = %[[TX]] to %{{.+}} step %{{.+}} {
// CHECK: memref.load %[[ROW]][%[[P]]]
// CHECK: memref.store %{{.+}}, %[[TILE]][%[[P]]]
// CHECK: }
// CHECK-NEXT: gpu.barrier
// The generic, in place on the tile.
// CHECK: scf.for %[[Q:.+]] = %[[TX]] to %{{.+}} step %{{.+}} {
// CHECK: %[[X:.+]] = memref.load %[[TILE]][%[[Q]]]
// CHECK: arith.mulf %[[X]], %[[X]]
// CHECK: }
// CHECK-NEXT: gpu.barrier
// CHECK: memref.store %{{.+}}, %{{.+}}[%{{.+}}] : memref<64xf32, strided<[1], offset: ?>>
// CHECK: gpu.barrier
// CHECK: gpu.terminator
// CHECK: } {bpt.q_block = 64 : i64}
// CHECK-NOT: scf.forall
func.func @loop(%in: memref<2x64xf32>, %out: memref<2x64xf32>) {
  scf.forall (%i) in (2) {
    %tile = memref.alloc() : memref<64xf32>
    %row = memref.subview %in[%i, 0] [1, 64] [1, 1] : memref<2x64xf32> to memref<64xf32, strided<[1], offset: ?>>
    memref.copy %row, %tile : memref<64xf32, strided<[1], offset: ?>> to memref<64xf32>
    linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%tile : memref<64xf32>) {
    ^bb0(%x: f32):
      %y = arith.mulf %x, %x : f32
      linalg.yield %y : f32
    }
    %dst = memref.subview %out[%i, 0] [1, 64] [1, 1] : memref<2x64xf32> to memref<64xf32, strided<[1], offset: ?>>
    memref.copy %tile, %dst : memref<64xf32> to memref<64xf32, strided<[1], offset: ?>>
  } {bpt.q_block = 64 : i64}
  return
}

// -----

// A reduction: each thread owns output points and runs the reduction
// dimension itself. Outside a blockwise loop, the op gets a grid-stride
// launch of its own: ceil(16 / 128) = 1 block.

// CHECK-LABEL: func.func @row_sums
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %[[ONE:.+]], {{.+}}) threads
// CHECK-NOT: dynamic_shared_memory_size
// CHECK: scf.for %[[P:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK: %[[INIT:.+]] = memref.load %{{.+}}[%[[P]]] : memref<16xf32>
// CHECK: %[[SUM:.+]] = scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %[[INIT]]) -> (f32) {
// CHECK: %[[V:.+]] = memref.load %{{.+}}[%[[P]], %[[K]]] : memref<16x32xf32>
// CHECK: %[[NEXT:.+]] = arith.addf %[[V]], %[[ACC]]
// CHECK: scf.yield %[[NEXT]]
// CHECK: memref.store %[[SUM]], %{{.+}}[%[[P]]] : memref<16xf32>
// CHECK-NOT: gpu.barrier
func.func @row_sums(%x: memref<16x32xf32>, %y: memref<16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<16x32xf32>) outs(%y : memref<16xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Tiles beyond the shared-memory budget go to the block's slice of a global
// workspace allocated on the host: grid blocks x spilled bytes.

// With the default budget the 2 KiB tile fits in shared memory.
// CHECK-LABEL: func.func @spill
// CHECK-NOT: memref.alloc
// CHECK: dynamic_shared_memory_size

// SPILL-LABEL: func.func @spill
// SPILL: %[[WS:.+]] = memref.alloc() {bpt.buffer_name = "block_scratch"} : memref<4096xi8>
// SPILL: gpu.launch
// SPILL-NOT: dynamic_shared_memory_size
// SPILL: arith.muli %{{.+}}, %{{.+}} : index
// SPILL: memref.view %[[WS]][%{{.+}}][] : memref<4096xi8> to memref<32x16xf32>
func.func @spill(%out: memref<2x32x16xf32>) {
  scf.forall (%i) in (2) {
    %big = memref.alloc() : memref<32x16xf32>
    %cst = arith.constant 1.0 : f32
    linalg.fill ins(%cst : f32) outs(%big : memref<32x16xf32>)
    %dst = memref.subview %out[%i, 0, 0] [1, 32, 16] [1, 1, 1] : memref<2x32x16xf32> to memref<32x16xf32, strided<[16, 1], offset: ?>>
    memref.copy %big, %dst : memref<32x16xf32> to memref<32x16xf32, strided<[16, 1], offset: ?>>
  }
  return
}

// -----

// A top-level elementwise op: 16-byte vectors per thread (8 bf16 elements),
// the body once per element, 2 x 2048 / 8 = 512 vectors: 4 blocks of 128.
// CHECK-LABEL: func.func @vector_add
// CHECK-SAME: (%[[A:.+]]: memref<2x2048xbf16>, %[[B:.+]]: memref<2x2048xbf16>, %[[C:.+]]: memref<2x2048xbf16>)
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %c4,
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c512 {
// CHECK: %[[COL:.+]] = arith.muli %{{.+}}, %c8 : index
// CHECK: %[[VA:.+]] = vector.load %[[A]][%{{.+}}, %[[COL]]] {alignment = 16 : i64} : memref<2x2048xbf16>, vector<8xbf16>
// CHECK: %[[VB:.+]] = vector.load %[[B]][%{{.+}}, %[[COL]]] {alignment = 16 : i64} : memref<2x2048xbf16>, vector<8xbf16>
// CHECK-COUNT-8: arith.addf
// CHECK: %[[SUM:.+]] = vector.from_elements
// CHECK: vector.store %[[SUM]], %[[C]][%{{.+}}, %[[COL]]] {alignment = 16 : i64} : memref<2x2048xbf16>, vector<8xbf16>
#id2 = affine_map<(i, j) -> (i, j)>
func.func @vector_add(%a: memref<2x2048xbf16>, %b: memref<2x2048xbf16>, %c: memref<2x2048xbf16>) {
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<2x2048xbf16>, memref<2x2048xbf16>) outs(%c : memref<2x2048xbf16>) {
  ^bb0(%x: bf16, %y: bf16, %o: bf16):
    %s = arith.addf %x, %y : bf16
    linalg.yield %s : bf16
  }
  return
}

// -----

// f32 in, bf16 out: 4 elements (16 bytes of f32, 8 of bf16); a per-row
// statistic that the innermost loop does not index is loaded once per
// vector.
// CHECK-LABEL: func.func @vector_round
// CHECK: scf.for
// CHECK: vector.load %{{.+}} {alignment = 16 : i64} : memref<4x64xf32>, vector<4xf32>
// CHECK: memref.load %{{.+}} : memref<4xf32>
// CHECK-COUNT-4: arith.truncf
// CHECK: vector.store %{{.+}} {alignment = 8 : i64} : memref<4x64xbf16>, vector<4xbf16>
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @vector_round(%x: memref<4x64xf32>, %s: memref<4xf32>, %y: memref<4x64xbf16>) {
  linalg.generic {indexing_maps = [#id2, #row, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%x, %s : memref<4x64xf32>, memref<4xf32>) outs(%y : memref<4x64xbf16>) {
  ^bb0(%a: f32, %b: f32, %o: bf16):
    %m = arith.mulf %a, %b : f32
    %t = arith.truncf %m : f32 to bf16
    linalg.yield %t : bf16
  }
  return
}

// -----

// A head transpose ([S, H, D] to [H, S, D]) keeps D innermost on both
// sides: vectors. A 2-D transpose, a reduction and a strided buffer do
// not: one element per thread.
// CHECK-LABEL: func.func @vector_heads
// CHECK: vector.load %{{.+}} : memref<8x2x64xbf16>, vector<8xbf16>
// CHECK: vector.store %{{.+}} : memref<2x8x64xbf16>, vector<8xbf16>
// CHECK-LABEL: func.func @scalar
// CHECK-NOT: vector.
// CHECK: return
func.func @vector_heads(%x: memref<8x2x64xbf16>, %y: memref<2x8x64xbf16>) {
  linalg.transpose ins(%x : memref<8x2x64xbf16>) outs(%y : memref<2x8x64xbf16>) permutation = [1, 0, 2]
  return
}
#id2 = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @scalar(%x: memref<64x32xbf16>, %y: memref<32x64xbf16>, %s: memref<64xf32>,
                  %v: memref<64x32xf32, strided<[64, 1]>>, %w: memref<64x32xf32>) {
  linalg.transpose ins(%x : memref<64x32xbf16>) outs(%y : memref<32x64xbf16>) permutation = [1, 0]
  linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x32xbf16>) outs(%s : memref<64xf32>) {
  ^bb0(%a: bf16, %acc: f32):
    %e = arith.extf %a : bf16 to f32
    %t = arith.addf %e, %acc : f32
    linalg.yield %t : f32
  }
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%v : memref<64x32xf32, strided<[64, 1]>>) outs(%w : memref<64x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}

// -----

// Index elements have no fixed width: one element per thread.
// CHECK-LABEL: func.func @index_elements
// CHECK-NOT: vector.load
// CHECK: memref.store
#id1 = affine_map<(i) -> (i)>
func.func @index_elements(%x: memref<64xindex>, %y: memref<64xindex>) {
  linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%x : memref<64xindex>) outs(%y : memref<64xindex>) {
  ^bb0(%a: index, %o: index):
    linalg.yield %a : index
  }
  return
}

// -----

// Host-side slices of whole buffers (a query-chunked backward's rows):
// each launch that uses one makes the slice itself from the buffer, and the
// host keeps no slice at an offset (the runtime passes base pointers). A
// slice of leading rows, whose address is the buffer's, may stay.
// CHECK-LABEL: func.func @slices
// CHECK-SAME: (%[[A:.+]]: memref<4x64xf32>, %[[B:.+]]: memref<2x64xf32>)
// CHECK-NOT: memref.subview
// CHECK: gpu.launch
// CHECK: %[[ROWS:.+]] = memref.subview %[[A]][2, 0] [2, 64] [1, 1]
// CHECK: memref.load %[[ROWS]]
// CHECK: gpu.terminator
// CHECK: %[[LEAD:.+]] = memref.subview %[[A]][0, 0] [2, 64] [1, 1]
// CHECK: memref.cast %[[LEAD]]
func.func @slices(%a: memref<4x64xf32>, %b: memref<2x64xf32>) {
  %rows = memref.subview %a[2, 0] [2, 64] [1, 1]
      : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1], offset: 128>>
  memref.copy %rows, %b
      : memref<2x64xf32, strided<[64, 1], offset: 128>> to memref<2x64xf32>
  %lead = memref.subview %a[0, 0] [2, 64] [1, 1]
      : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1]>>
  %cast = memref.cast %lead : memref<2x64xf32, strided<[64, 1]>> to memref<*xf32>
  return
}

// -----

// A tile op with a thread tile (bpt-tile-gemms' GEMM step): each thread
// keeps 4 x 2 accumulators of the 32 x 64 output across the reduction;
// with 128 threads the points are 32 / 4 = 8 rows by 64 / 2 = 32 columns,
// consecutive threads on consecutive columns, a thread's rows 8 apart and
// its columns 32 apart. The first operand (rows) is loaded once for both
// of a thread's columns, the second once for all four rows: 4 + 2 loads for
// 8 multiply-adds a step.

// CHECK-LABEL: func.func @thread_tile
// CHECK: gpu.launch
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK: scf.for %[[P:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK: %[[COL:.+]] = arith.remui %[[P]], %c32
// CHECK: %[[ROW:.+]] = arith.divui %[[P]], %c32
// CHECK: arith.addi %[[ROW]], %c8
// CHECK: arith.addi %[[ROW]], %c16
// CHECK: arith.addi %[[ROW]], %c24
// CHECK: arith.addi %[[COL]], %c32
// CHECK-COUNT-8: memref.load %{{.+}} : memref<32x64xf32>
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{.+}}) -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK-COUNT-6: memref.load
// CHECK-NOT: memref.load
// CHECK: scf.yield {{.+}} : f32, f32, f32, f32, f32, f32, f32, f32
// CHECK-COUNT-8: memref.store %{{.+}} : memref<32x64xf32>
// CHECK: gpu.barrier
func.func @thread_tile(%a: memref<32x16xf32>, %b: memref<16x64xf32>,
                       %c: memref<32x64xf32>) {
  scf.forall (%i) in (2) {
    linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>,
                                     affine_map<(i, j, k) -> (k, j)>,
                                     affine_map<(i, j, k) -> (i, j)>],
                    iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%a, %b : memref<32x16xf32>, memref<16x64xf32>)
        outs(%c : memref<32x64xf32>) attrs = {bpt.thread_tile = array<i64: 4, 2>} {
    ^bb0(%x: f32, %y: f32, %acc: f32):
      %p = arith.mulf %x, %y : f32
      %s = arith.addf %p, %acc : f32
      linalg.yield %s : f32
    }
  }
  return
}
