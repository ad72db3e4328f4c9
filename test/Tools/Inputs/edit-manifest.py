#!/usr/bin/env python3
"""Writes a copy of a kernel-set manifest with some fields changed, for the
tests of bpt-run --check-manifest.

usage: edit-manifest.py IN OUT EDIT...
  path=JSON   sets the field (path: dot-separated keys and list indices,
              e.g. buffers.0.shape=[2,64,64]); a value that is not JSON is
              taken as a string
  -path       deletes the field
"""
import json
import sys


def walk(root, path):
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = root
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def main():
    source, target, *edits = sys.argv[1:]
    with open(source) as f:
        manifest = json.load(f)
    for edit in edits:
        if edit.startswith("-"):
            node, key = walk(manifest, edit[1:])
            del node[key]
            continue
        path, text = edit.split("=", 1)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        node, key = walk(manifest, path)
        node[key] = value
    with open(target, "w") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
