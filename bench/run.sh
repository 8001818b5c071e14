#!/usr/bin/env bash
# Runs every benchmark against the build in $1 (default build/). Run on an
# idle machine: two benchmarks at once on 2 cores distort each other.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
echo "# hark benchmarks — $(date -u +%F) — $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "## transcription (PocketSphinx)"
bench/bench_transcribe.sh "$BUILD/hark" pocketsphinx
echo
echo "## Whisper engine (random-weight models of real dimensions)"
bench/bench_whisper.sh "$BUILD"
bench/bench_serve.sh "$BUILD"
echo
bench/bench_llm.sh "$BUILD"
echo
bench/bench_analyze.sh "$BUILD"
