#!/usr/bin/env bash
# Whisper engine benchmark at real model sizes: synthesizes random-weight
# tiny.en (f16 and q5_0) and base.en (f16) models with `hark models synth`
# (the same dimensions as whisper.cpp's speed anchors in
# $HARK_SHARED/whisper/SPEED.md) and runs bench_whisper with 1 and 2 threads
# on the JFK clip: encoder ms per 30 s window, decoder ms per token, whole-file
# x real time, peak RSS.
#   usage: bench/bench_whisper.sh BUILD_DIR
set -euo pipefail
BUILD=${1:-build}
SHARED=${HARK_SHARED:-$(dirname "$0")/../../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
for spec in "tiny.en f16" "tiny.en q5_0" "base.en f16"; do
  set -- $spec
  f="$tmp/${1}-${2}.bin"
  "$BUILD/hark" models synth --like "$1" --ftype "$2" --seed 1 -o "$f" >/dev/null
  echo "### $1 $2 ($(stat -c %s "$f") bytes)"
  "$BUILD/bench_whisper" -m "$f" -t 1,2 -n 5 -nf "$SHARED/audio/jfk/jfk.wav"
  echo
done
