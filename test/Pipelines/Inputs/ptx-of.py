#!/usr/bin/env python3
"""Prints the PTX held by the gpu.binary in an MLIR file (stdin): the
`assembly = "..."` string of its object, with MLIR's escapes decoded."""
import re
import sys

text = sys.stdin.read()
match = re.search(r'assembly = "((?:[^"\\]|\\.)*)"', text)
if not match:
    sys.exit("no gpu.binary with an assembly string")
escaped = match.group(1)
out = bytearray()
i = 0
while i < len(escaped):
    c = escaped[i]
    if c == "\\":
        nxt = escaped[i + 1]
        if nxt in '\\"':
            out += nxt.encode()
            i += 2
        else:
            out.append(int(escaped[i + 1:i + 3], 16))
            i += 3
    else:
        out += c.encode()
        i += 1
sys.stdout.write(out.decode())
