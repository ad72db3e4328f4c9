// A bf16 attention (wgmma on sm_90a) next to an f32 FFN (portable): some op
// takes the portable path, but no attention does.
func.func @mixed(%q: tensor<1x2x128x64xbf16>, %x: tensor<1x64x128xf32>,
                 %w1: tensor<128x256xf32>, %w2: tensor<256x128xf32>,
                 %w3: tensor<128x256xf32>)
    -> (tensor<1x2x128x64xbf16>, tensor<1x64x128xf32>) {
  %o = bpt.attention %q, %q, %q
      : (tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>, tensor<1x2x128x64xbf16>)
        -> tensor<1x2x128x64xbf16>
  %f = bpt.ffn swiglu %x, %w1, %w2, gate %w3
      : (tensor<1x64x128xf32>, tensor<128x256xf32>, tensor<256x128xf32>,
         tensor<128x256xf32>) -> tensor<1x64x128xf32>
  return %o, %f : tensor<1x2x128x64xbf16>, tensor<1x64x128xf32>
}
