#!/usr/bin/env python3
"""Runs a bpt attention kernel set on PyTorch tensors and compares it with
torch.nn.functional.scaled_dot_product_attention (exit status 1 if the
relative difference exceeds 1e-2 for bf16/f16, 1e-5 for f32).

  python3 python/examples/attention_torch.py att.json
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import bpt  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def main(path):
    rt = bpt.Runtime()
    attention = bpt.KernelSet(rt, path)
    m = attention.manifest
    assert m["op"] == "attention", "expects an attention kernel set"
    buffers = {b["name"]: b for b in m["buffers"]}
    dtype = DTYPES[buffers["query"]["dtype"]]
    torch.manual_seed(0)
    q, k, v = (torch.randn(buffers[n]["shape"], device="cuda", dtype=dtype)
               for n in ("query", "key", "value"))
    out = torch.full(buffers["result"]["shape"], float("nan"), device="cuda", dtype=dtype)
    attention(query=q, key=k, value=v, result=out)
    torch.cuda.synchronize()
    causal = m["options"].get("causal", False)
    gqa = q.shape[1] != k.shape[1]
    sq, skv = q.shape[2], k.shape[2]
    mask = None
    if causal:
        # bpt aligns the causal diagonal bottom-right (is_causal=True in
        # PyTorch aligns it top-left; the two agree when Sq == Skv).
        mask = torch.ones(sq, skv, device="cuda", dtype=torch.bool).tril(skv - sq)
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(),
                                         attn_mask=mask, enable_gqa=gqa)
    # A row that sees no key is 0 in bpt, NaN in PyTorch.
    ref = torch.nan_to_num(ref, nan=0.0)
    diff = (torch.linalg.vector_norm(out.double() - ref) /
            torch.linalg.vector_norm(ref)).item()
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    verdict = "PASS" if diff <= tolerance else "FAIL"
    print(f"{os.path.basename(path)}: bpt vs scaled_dot_product_attention "
          f"(float64): relative difference {diff:.2e} (tolerance {tolerance:.0e}): {verdict}")
    attention.close()
    rt.close()
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
