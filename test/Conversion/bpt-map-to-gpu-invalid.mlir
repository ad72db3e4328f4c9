// RUN: bpt-opt %s --split-input-file --bpt-map-to-gpu --verify-diagnostics
// RUN: not bpt-opt %s --bpt-map-to-gpu="threads=2048" 2>&1 | FileCheck %s --check-prefix=THREADS
// THREADS: error: bpt-map-to-gpu: option threads must be in [1, 1024], got 2048
// RUN: not bpt-opt %s --bpt-map-to-gpu="max-blocks=2147483648" 2>&1 | FileCheck %s --check-prefix=BLOCKS
// RUN: not bpt-opt %s --bpt-map-to-gpu="max-workspace-blocks=0" 2>&1 | FileCheck %s --check-prefix=BLOCKS
// BLOCKS: error: bpt-map-to-gpu: options max-blocks and max-workspace-blocks must be in [1, 2^31 - 1] (a grid's blocks along x)

// What the GPU mapping cannot place is an error at its location.

func.func @not_bufferized(%t: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{bpt-map-to-gpu: expects bufferized IR (the loop still has tensor results)}}
  %r = scf.forall (%i) in (4) shared_outs(%o = %t) -> (tensor<4xf32>) {
    scf.forall.in_parallel {
    }
  }
  return %r : tensor<4xf32>
}

// -----

func.func @dynamic_loop(%n: index, %m: memref<8xf32>) {
  // expected-error @+1 {{bpt-map-to-gpu: expects a loop with static bounds from 0 with step 1}}
  scf.forall (%i) in (%n) {
  }
  return
}

// -----

func.func @dynamic_tile(%n: index) {
  scf.forall (%i) in (4) {
    // expected-error @+1 {{bpt-map-to-gpu: expects a statically shaped, contiguous allocation, got 'memref<?xf32>'}}
    %a = memref.alloc(%n) : memref<?xf32>
  }
  return
}

// -----

func.func @host_store(%m: memref<8xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{bpt-map-to-gpu: 'memref.store' cannot stay on the host side of a kernel set}}
  memref.store %v, %m[%c0] : memref<8xf32>
  return
}

// -----

// A slice at an offset that a host-side op uses (e.g. the source of a
// tensor map) would reach the runtime as its buffer's base pointer: an
// error, not a wrong address.
func.func @slice_on_host(%a: memref<4x64xf32>) {
  // expected-error @+1 {{bpt-map-to-gpu: a slice of a buffer is used on the host side of a kernel set, by 'memref.cast'; only portable launches take slices}}
  %rows = memref.subview %a[2, 0] [2, 64] [1, 1]
      : memref<4x64xf32> to memref<2x64xf32, strided<[64, 1], offset: 128>>
  // expected-note @+1 {{the use}}
  %cast = memref.cast %rows : memref<2x64xf32, strided<[64, 1], offset: 128>> to memref<*xf32>
  return
}

// -----

// A thread tile must divide the op's output tile.
func.func @thread_tile_not_dividing(%a: memref<30x16xf32>, %b: memref<16x64xf32>,
                                    %c: memref<30x64xf32>) {
  scf.forall (%i) in (2) {
    // expected-error @+1 {{bpt-map-to-gpu: bpt.thread_tile 4 x 2 does not divide the output's 30 x 64 elements}}
    linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>,
                                     affine_map<(i, j, k) -> (k, j)>,
                                     affine_map<(i, j, k) -> (i, j)>],
                    iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%a, %b : memref<30x16xf32>, memref<16x64xf32>)
        outs(%c : memref<30x64xf32>) attrs = {bpt.thread_tile = array<i64: 4, 2>} {
    ^bb0(%x: f32, %y: f32, %acc: f32):
      %p = arith.mulf %x, %y : f32
      %s = arith.addf %p, %acc : f32
      linalg.yield %s : f32
    }
  }
  return
}

// -----

func.func @thread_tile_rank_one(%a: memref<32x16xf32>, %c: memref<32xf32>) {
  scf.forall (%i) in (2) {
    // expected-error @+1 {{bpt-map-to-gpu: bpt.thread_tile needs an output of rank 2 or more indexed by loop dimensions}}
    linalg.generic {indexing_maps = [affine_map<(i, k) -> (i, k)>,
                                     affine_map<(i, k) -> (i)>],
                    iterator_types = ["parallel", "reduction"]}
        ins(%a : memref<32x16xf32>)
        outs(%c : memref<32xf32>) attrs = {bpt.thread_tile = array<i64: 4, 2>} {
    ^bb0(%x: f32, %acc: f32):
      %s = arith.addf %x, %acc : f32
      linalg.yield %s : f32
    }
  }
  return
}
