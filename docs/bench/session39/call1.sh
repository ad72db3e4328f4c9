#!/usr/bin/env bash
# Session 39, call 1: session 38's prepared recompute call, then session
# 37's D 128 ncu call (see each script's header for what to compile).
bash docs/bench/next-session38/recompute.sh
bash docs/bench/h100-2026-12-07-session37/next-d128.sh
