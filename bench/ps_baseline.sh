#!/usr/bin/env bash
# Baseline accuracy of Debian's stock `pocketsphinx_continuous` on every row
# of $HARK_SHARED/audio/REFERENCES.tsv, for comparison with hark's PocketSphinx
# engine (tests/integration/test_wer_pocketsphinx.c). Each clip (start..end
# span when given; the named channel for the stereo rows, else a downmix) is
# converted with sox into a clean 16 kHz mono 16-bit WAV with a 44-byte header
# in a temporary directory and decoded by `pocketsphinx_continuous -infile` in
# a fresh process; hypotheses are scored with bench/wer_score (hark's own
# normaliser and WER), overall and for read speech (LibriSpeech, LibriVox,
# LJSpeech). Usage: bench/ps_baseline.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shared=${HARK_SHARED:-$root/../shared}
scorer=$build/wer_score
tsv=$shared/audio/REFERENCES.tsv
for tool in sox pocketsphinx_continuous; do
  command -v $tool >/dev/null || { echo "ps_baseline: $tool not found" >&2; exit 1; }
done
[ -x "$scorer" ] || { echo "ps_baseline: build $scorer first (cmake --build $build)" >&2; exit 1; }
[ -f "$tsv" ] || { echo "ps_baseline: $tsv not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

i=0
# read(1) merges runs of tabs, so empty fields become "-" first
tail -n +2 "$tsv" | awk -F'\t' -v OFS='\t' '{ for (i = 1; i <= NF; i++) if ($i == "") $i = "-"; print }' |
while IFS=$'\t' read -r audio start end speaker ref _rest; do
  [ -n "$audio" ] && [ "$audio" != "-" ] || continue
  [ "$start" != "-" ] || start=
  [ "$end" != "-" ] || end=
  i=$((i + 1))
  wav=$tmp/clip$i.wav
  effects=()
  if [ -n "$start" ]; then
    if [ -n "$end" ]; then
      effects+=(trim "$start" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
    else
      effects+=(trim "$start")
    fi
  fi
  case "$speaker" in
    *"left channel"*) effects+=(remix 1) ;;
    *"right channel"*) effects+=(remix 2) ;;
  esac
  sox "$shared/audio/$audio" -r 16000 -b 16 -e signed-integer "$wav" "${effects[@]}" channels 1
  hyp=$(pocketsphinx_continuous -infile "$wav" 2>/dev/null | tr '\n' ' ')
  case "$audio" in
    librispeech/*|librivox/*|ljspeech/*) group=read ;;
    *) group=other ;;
  esac
  printf '%s\t%s\t%s\n' "$group" "$ref" "$hyp"
  printf '%-50s %s\n' "$audio${start:+ @$start}" "$hyp" >&2
done > "$tmp/scores.tsv"
"$scorer" < "$tmp/scores.tsv"
