#!/usr/bin/env bash
# Transcription benchmark: x real time and peak RSS of `hark transcribe` on
# every shared clip and on a 30-minute file built by concatenating them.
# Each file runs in a fresh process (so peak RSS is per file), best of
# $REPEAT runs. Prints a markdown table.
#   usage: bench/bench_transcribe.sh HARK_BINARY [ENGINE [MODEL]]
set -euo pipefail
HARK=${1:?usage: bench_transcribe.sh HARK_BINARY [ENGINE [MODEL]]}
ENGINE=${2:-pocketsphinx}
MODEL=${3:-}
REPEAT=${REPEAT:-3}            # runs per clip (best wall time is kept)
LONG_REPEAT=${LONG_REPEAT:-1}  # runs of the 30-minute file
SHARED=${HARK_SHARED:-$(dirname "$0")/../../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

mapfile -t clips < <(tail -n +2 "$SHARED/audio/REFERENCES.tsv" | cut -f1 | sort -u)

# 30-minute file: the clips (16 kHz mono) concatenated round-robin.
list="$tmp/list.txt"; : > "$list"; i=0
for c in "${clips[@]}"; do
  sox -q "$SHARED/audio/$c" -r 16000 -c 1 -b 16 "$tmp/c$i.wav"; i=$((i + 1))
done
total=0; k=0
while [ "$total" -lt 1800 ]; do
  f="$tmp/c$((k % i)).wav"; echo "$f" >> "$list"
  total=$((total + $(soxi -D "$f" | cut -d. -f1) )); k=$((k + 1))
done
sox -q $(cat "$list") "$tmp/long30.wav" trim 0 1800

args=(-q -e "$ENGINE")
[ -n "$MODEL" ] && args+=(-m "$MODEL")

run_one() { # file repeats -> "seconds rss_kb" (best wall time, max RSS)
  local best="" rss=0 out
  for _ in $(seq "$2"); do
    out=$(/usr/bin/time -f '%e %M' "$HARK" transcribe "$1" "${args[@]}" 2>&1 >/dev/null | tail -n 1)
    local t=${out% *} m=${out#* }
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

echo "| file | audio s | wall s | x real time | peak RSS MB |"
echo "|---|---|---|---|---|"
tot_audio=0; tot_wall=0
for c in "${clips[@]}" long30; do
  if [ "$c" = long30 ]; then f="$tmp/long30.wav"; name="30-min concatenation"; else f="$SHARED/audio/$c"; name=$c; fi
  dur=$(soxi -D "$f")
  if [ "$c" = long30 ]; then reps=$LONG_REPEAT; else reps=$REPEAT; fi
  read -r wall rss < <(run_one "$f" "$reps")
  awk -v n="$name" -v d="$dur" -v w="$wall" -v r="$rss" \
    'BEGIN{printf "| %s | %.1f | %.2f | %.1f | %.0f |\n", n, d, w, (w>0? d/w : 0), r/1024}'
  if [ "$c" != long30 ]; then
    tot_audio=$(awk -v a="$tot_audio" -v d="$dur" 'BEGIN{print a+d}')
    tot_wall=$(awk -v a="$tot_wall" -v w="$wall" 'BEGIN{print a+w}')
  fi
done
awk -v d="$tot_audio" -v w="$tot_wall" 'BEGIN{printf "| all shared clips (sum) | %.1f | %.2f | %.1f | |\n", d, w, d/w}'
