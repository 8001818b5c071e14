#!/usr/bin/env bash
# Transcription benchmark: x real time and peak RSS of `hark transcribe` on
# every shared clip and on a 30-minute file built by concatenating them.
# Each file runs in a fresh process (so peak RSS is per file), best of
# $REPEAT runs. With the PocketSphinx engine the anchor is Debian's
# `pocketsphinx_continuous -infile` on the same audio (as a clean 16 kHz WAV),
# timed in the same run (ANCHOR_LONG=1 also times it on the 30-minute file).
# Prints a markdown table.
#   usage: bench/bench_transcribe.sh HARK_BINARY [ENGINE [MODEL]]
set -euo pipefail
HARK=${1:?usage: bench_transcribe.sh HARK_BINARY [ENGINE [MODEL]]}
ENGINE=${2:-pocketsphinx}
MODEL=${3:-}
REPEAT=${REPEAT:-3}            # runs per clip (best wall time is kept)
LONG_REPEAT=${LONG_REPEAT:-1}  # runs of the 30-minute file
ANCHOR_LONG=${ANCHOR_LONG:-0}
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

anchor() { # 16 kHz wav -> wall seconds of pocketsphinx_continuous
  /usr/bin/time -f '%e' pocketsphinx_continuous -infile "$1" -logfn /dev/null 2>&1 >/dev/null | tail -n 1
}

echo "| file | audio s | hark wall s | hark x real time | peak RSS MB | anchor wall s | hark speed / anchor |"
echo "|---|---|---|---|---|---|---|"
tot_audio=0; tot_wall=0; tot_anchor=0; j=0
for c in "${clips[@]}" long30; do
  if [ "$c" = long30 ]; then f="$tmp/long30.wav"; wav=$f; name="30-min concatenation"
  else f="$SHARED/audio/$c"; wav="$tmp/c$j.wav"; name=$c; j=$((j + 1)); fi
  dur=$(soxi -D "$f")
  if [ "$c" = long30 ]; then reps=$LONG_REPEAT; else reps=$REPEAT; fi
  read -r wall rss < <(run_one "$f" "$reps")
  a=""
  if [ "$ENGINE" = pocketsphinx ] && { [ "$c" != long30 ] || [ "$ANCHOR_LONG" = 1 ]; }; then a=$(anchor "$wav"); fi
  awk -v n="$name" -v d="$dur" -v w="$wall" -v r="$rss" -v a="$a" \
    'BEGIN{printf "| %s | %.1f | %.2f | %.1f | %.0f | %s | %s |\n", n, d, w, (w>0? d/w : 0), r/1024,
           (a==""? "-" : a), (a==""? "-" : sprintf("%.2f", a/w))}'
  if [ "$c" != long30 ]; then
    tot_audio=$(awk -v x="$tot_audio" -v d="$dur" 'BEGIN{print x+d}')
    tot_wall=$(awk -v x="$tot_wall" -v w="$wall" 'BEGIN{print x+w}')
    [ -n "$a" ] && tot_anchor=$(awk -v x="$tot_anchor" -v y="$a" 'BEGIN{print x+y}')
  fi
done
awk -v d="$tot_audio" -v w="$tot_wall" -v a="$tot_anchor" \
  'BEGIN{printf "| all shared clips (sum) | %.1f | %.2f | %.1f | | %s | %s |\n", d, w, d/w,
         (a>0? a : "-"), (a>0? sprintf("%.2f", a/w) : "-")}'
