// RUN: bpt-opt %s --split-input-file --bpt-tile-gemms="shared-memory=232448 multiprocessors=1" | FileCheck %s
// RUN: bpt-opt %s --split-input-file --bpt-tile-gemms="shared-memory=232448" | FileCheck %s --check-prefix=WIDE
// RUN: bpt-opt %s --split-input-file --bpt-tile-gemms="shared-memory=40000 threads=128 multiprocessors=1" | FileCheck %s --check-prefix=SMALL
// RUN: not bpt-opt %s --bpt-tile-gemms="tile-n=48" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bpt-opt %s --bpt-tile-gemms="tile-k=4" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not bpt-opt %s --bpt-tile-gemms="threads=0" 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not bpt-opt %s --bpt-tile-gemms="multiprocessors=0" 2>&1 | FileCheck %s --check-prefix=THREADS

// BAD: error: bpt-tile-gemms: tile-m must be a multiple of 8 and tile-n one of 32, both in [32, 256], tile-k in [8, 256]
// THREADS: error: bpt-tile-gemms: threads must be in [1, 1024], shared-memory not negative and multiprocessors positive

// The portable FFN's first GEMM, 1000 rows (not a multiple of the tile),
// on a chip of one multiprocessor: 8 x 16 output tiles of 128 x 128, the last row of tiles 1000 - 896 = 104
// rows high (the copies' sizes), 16 steps of 32 along k. The operand
// buffers are a word wider than their tiles; the tiled op runs on the
// three buffers with a 16 x 4 thread tile (256 threads: a warp along 128
// columns, 8 warps down 128 rows).
// CHECK-LABEL: func.func @ffn_gemm
// CHECK-SAME: (%[[X:.+]]: memref<1x1000x512xf32>, %[[W:.+]]: memref<512x2048xf32>, %[[H:.+]]: memref<1x1000x2048xf32>)
// CHECK: scf.forall (%[[B:.+]], %[[I:.+]], %[[J:.+]]) in (1, 8, 16) {
// CHECK: %[[ROW:.+]] = arith.muli %[[I]], %c128
// CHECK: %[[LEFT:.+]] = arith.subi %c1000, %[[ROW]]
// CHECK: %[[ROWS:.+]] = arith.minsi %{{.+}}, %[[LEFT]]
// CHECK: %[[COL:.+]] = arith.muli %[[J]], %{{.+}}
// CHECK: %[[ABUF:.+]] = memref.alloc() : memref<1x128x33xf32>
// CHECK: %[[A:.+]] = memref.subview %[[ABUF]][0, 0, 0] [1, 128, 32] [1, 1, 1]
// CHECK: %[[BBUF:.+]] = memref.alloc() : memref<32x129xf32>
// CHECK: %[[BT:.+]] = memref.subview %[[BBUF]][0, 0] [32, 128] [1, 1]
// CHECK: %[[C:.+]] = memref.alloc() : memref<1x128x128xf32>
// CHECK: %[[HIN:.+]] = memref.subview %[[H]][%[[B]], %[[ROW]], %[[COL]]] [1, %[[ROWS]], 128] [1, 1, 1]
// CHECK: %[[CIN:.+]] = memref.subview %[[C]][0, 0, 0] [1, %[[ROWS]], 128] [1, 1, 1]
// CHECK: memref.copy %[[HIN]], %[[CIN]]
// CHECK: scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK: %[[XS:.+]] = memref.subview %[[X]][%[[B]], %[[ROW]], %[[K]]] [1, %[[ROWS]], 32] [1, 1, 1]
// CHECK: %[[AS:.+]] = memref.subview %[[A]][0, 0, 0] [1, %[[ROWS]], 32] [1, 1, 1]
// CHECK: memref.copy %[[XS]], %[[AS]]
// CHECK: %[[WS:.+]] = memref.subview %[[W]][%[[K]], %[[COL]]] [32, 128] [1, 1]
// CHECK: memref.copy %[[WS]], %{{.+}}
// CHECK: linalg.generic {{.+}} ins(%[[A]], %[[BT]] : {{.+}}) outs(%[[C]] : memref<1x128x128xf32>) attrs = {bpt.thread_tile = array<i64: 16, 4>}
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: }
// CHECK: %[[HOUT:.+]] = memref.subview %[[H]][%[[B]], %[[ROW]], %[[COL]]] [1, %[[ROWS]], 128] [1, 1, 1]
// CHECK: %[[COUT:.+]] = memref.subview %[[C]][0, 0, 0] [1, %[[ROWS]], 128] [1, 1, 1]
// CHECK: memref.copy %[[COUT]], %[[HOUT]]
// CHECK-NOT: linalg.generic
// CHECK: return
// On 132 multiprocessors (the default) 128 x 128 and 128 x 64 tiles would
// leave fewer than two a multiprocessor: 64 x 64, 8 x 2 a thread.
// WIDE-LABEL: func.func @ffn_gemm
// WIDE: scf.forall ({{.+}}) in (1, 16, 32)
// WIDE: memref.alloc() : memref<1x64x33xf32>
// WIDE: memref.alloc() : memref<32x65xf32>
// WIDE: memref.alloc() : memref<1x64x64xf32>
// WIDE: bpt.thread_tile = array<i64: 8, 2>
// Within 40000 bytes the tiles are 64 x 64 (33 KiB with the padding), the
// thread tile at 128 threads 16 x 2.
// SMALL-LABEL: func.func @ffn_gemm
// SMALL: scf.forall ({{.+}}) in (1, 16, 32)
// SMALL: memref.alloc() : memref<1x64x33xf32>
// SMALL: memref.alloc() : memref<32x65xf32>
// SMALL: memref.alloc() : memref<1x64x64xf32>
// SMALL: bpt.thread_tile = array<i64: 16, 2>
func.func @ffn_gemm(%x: memref<1x1000x512xf32>, %w: memref<512x2048xf32>,
                    %h: memref<1x1000x2048xf32>) {
  linalg.generic {indexing_maps = [affine_map<(b, i, j, k) -> (b, i, k)>,
                                   affine_map<(b, i, j, k) -> (k, j)>,
                                   affine_map<(b, i, j, k) -> (b, i, j)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<1x1000x512xf32>, memref<512x2048xf32>)
      outs(%h : memref<1x1000x2048xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %p, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A weight gradient (dW = xᵀ·dy over batch and rows: two reductions) with a
// transposed operand and bf16 inputs into f32: the batch is a step of one,
// the rows steps of 32 (the largest power of two up to tile-k dividing 96);
// bf16 buffers are two elements wider. 128 x 64 would be one tile: two of
// 64 x 64, 8 x 2 a thread.
// CHECK-LABEL: func.func @weight_grad
// CHECK: scf.forall ({{.+}}) in (2, 1)
// CHECK: memref.alloc() : memref<1x32x66xbf16>
// CHECK: memref.alloc() : memref<1x32x66xbf16>
// CHECK: memref.alloc() : memref<64x64xf32>
// CHECK: scf.for %{{.+}} = %{{.+}} to %c2{{(_[0-9]+)?}} step %c1{{(_[0-9]+)?}} {
// CHECK: scf.for %{{.+}} = %{{.+}} to %c96{{(_[0-9]+)?}} step %c32{{(_[0-9]+)?}} {
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction", "reduction"]{{.+}} attrs = {bpt.thread_tile = array<i64: 8, 2>}
// CHECK: arith.extf
func.func @weight_grad(%x: memref<2x96x128xbf16>, %dy: memref<2x96x64xbf16>,
                       %dw: memref<128x64xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j, b, s) -> (b, s, i)>,
                                   affine_map<(i, j, b, s) -> (b, s, j)>,
                                   affine_map<(i, j, b, s) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%x, %dy : memref<2x96x128xbf16>, memref<2x96x64xbf16>)
      outs(%dw : memref<128x64xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %af = arith.extf %a : bf16 to f32
    %bf = arith.extf %b : bf16 to f32
    %p = arith.mulf %af, %bf : f32
    %s = arith.addf %p, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// x·Wᵀ (the second operand read along its rows) and m, n not multiples of
// 32: m rounds up to 64, n to 96; 64 x 96 is one tile, 64 x 64 two. k = 40
// in steps of 8; a 8 x 2 thread tile.
// CHECK-LABEL: func.func @transposed_ragged
// CHECK: scf.forall ({{.+}}) in (1, 2)
// CHECK: memref.alloc() : memref<64x9xf32>
// CHECK: memref.alloc() : memref<64x9xf32>
// CHECK: memref.alloc() : memref<64x64xf32>
// CHECK: scf.for %{{.+}} = %{{.+}} to %c40{{(_[0-9]+)?}} step %c8{{(_[0-9]+)?}} {
// CHECK: attrs = {bpt.thread_tile = array<i64: 8, 2>}
func.func @transposed_ragged(%x: memref<50x40xf32>, %w: memref<70x40xf32>,
                             %y: memref<50x70xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>,
                                   affine_map<(i, j, k) -> (j, k)>,
                                   affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<50x40xf32>, memref<70x40xf32>)
      outs(%y : memref<50x70xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %p, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Left alone: a row sum (no second operand), a GEMM with too few rows (a
// decode step), one whose k has no step of 8, one that reads the loop
// position (linalg.index), one of `index` elements (no bit width for its
// buffers' sizes), and a GEMM inside a loop body (a kernel already).
// CHECK-LABEL: func.func @not_gemms
// CHECK-NOT: scf.forall ({{.+}}) in
// CHECK-NOT: bpt.thread_tile
// CHECK: scf.forall (%{{.+}}) in (4)
// CHECK-NOT: bpt.thread_tile
// CHECK: return
func.func @not_gemms(%x: memref<64x64xf32>, %r: memref<64xf32>,
                     %q: memref<4x64xf32>, %w: memref<64x64xf32>,
                     %o: memref<4x64xf32>, %odd: memref<64x36xf32>,
                     %wodd: memref<36x64xf32>, %y: memref<64x64xf32>,
                     %ia: memref<64x64xindex>, %ib: memref<64x64xindex>,
                     %ic: memref<64x64xindex>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x64xf32>) outs(%r : memref<64xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  linalg.matmul ins(%q, %w : memref<4x64xf32>, memref<64x64xf32>)
                outs(%o : memref<4x64xf32>)
  linalg.matmul ins(%odd, %wodd : memref<64x36xf32>, memref<36x64xf32>)
                outs(%y : memref<64x64xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>,
                                   affine_map<(i, j, k) -> (k, j)>,
                                   affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<64x64xf32>, memref<64x64xf32>)
      outs(%y : memref<64x64xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %i = linalg.index 0 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    %p = arith.mulf %a, %f : f32
    %s = arith.addf %p, %acc : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>,
                                   affine_map<(i, j, k) -> (k, j)>,
                                   affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%ia, %ib : memref<64x64xindex>, memref<64x64xindex>)
      outs(%ic : memref<64x64xindex>) {
  ^bb0(%a: index, %b: index, %acc: index):
    %p = arith.muli %a, %b : index
    %s = arith.addi %p, %acc : index
    linalg.yield %s : index
  }
  scf.forall (%t) in (4) {
    linalg.matmul ins(%x, %w : memref<64x64xf32>, memref<64x64xf32>)
                  outs(%y : memref<64x64xf32>)
  }
  return
}

// -----

// A named linalg.matmul is tiled as its generic form.
// CHECK-LABEL: func.func @named_matmul
// CHECK: scf.forall ({{.+}}) in (2, 1)
// CHECK: linalg.generic {{.+}} attrs = {bpt.thread_tile = array<i64: 16, 2>}
// CHECK-NOT: linalg.matmul
func.func @named_matmul(%a: memref<256x64xf32>, %b: memref<64x64xf32>,
                        %c: memref<256x64xf32>) {
  linalg.matmul ins(%a, %b : memref<256x64xf32>, memref<64x64xf32>)
                outs(%c : memref<256x64xf32>)
  return
}
