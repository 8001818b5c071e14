#!/usr/bin/env bash
# hark demo: transcribes FILE, or (by default) a short two-voice meeting that
# is synthesized on the spot with espeak-ng, so nothing outside the repository
# is needed, then analyses the transcript into minutes and a knowledge graph
# (offline analyzer unless an LLM provider is configured). Outputs land in
# build/demo/out (txt, json, srt, vtt, minutes.json/.md, graph.json, diagram
# spec/SVG/PNG and an MP4 whose diagram follows the audio).
set -euo pipefail
HARK=${1:?usage: demo.sh HARK_BINARY [FILE]}
FILE=${2:-}
DEMO_DIR=$(dirname "$HARK")/demo
mkdir -p "$DEMO_DIR/out"

if [ -z "$FILE" ]; then
  FILE="$DEMO_DIR/meeting.wav"
  if [ ! -s "$FILE" ]; then
    echo "demo: synthesizing a two-voice meeting with espeak-ng" >&2
    i=0
    while IFS='|' read -r voice line; do
      espeak-ng -v "$voice" -s 140 -w "$DEMO_DIR/turn$i.wav" "$line"
      sox -q "$DEMO_DIR/turn$i.wav" -r 16000 -c 1 "$DEMO_DIR/turn$i.r.wav" pad 0 0.4
      i=$((i + 1))
    done <<'TURNS'
en-us+m1|Good morning everyone. Let's review the budget for the next quarter.
en-us+f2|Thanks. The marketing budget is ten percent over plan.
en-us+m1|Then we need to cut travel costs. Alice, can you prepare a proposal by Friday?
en-us+f2|Yes, I will send the proposal by Friday. We also agreed to hire two engineers.
en-us+m1|Great. Let's meet again next week to decide on the deadline.
TURNS
    sox -q "$DEMO_DIR"/turn[0-9].r.wav "$FILE"
    rm -f "$DEMO_DIR"/turn*.wav
  fi
fi

echo "== hark transcribe $FILE" >&2
"$HARK" transcribe "$FILE" --format all -o "$DEMO_DIR/out"
stem=$(basename "$FILE"); stem=${stem%.*}
cat "$DEMO_DIR/out/$stem.txt"
echo >&2
echo "== hark analyze $DEMO_DIR/out/$stem.json" >&2
"$HARK" analyze "$DEMO_DIR/out/$stem.json" -o "$DEMO_DIR/out" --data "$DEMO_DIR/data" \
  --date "$(date +%F)" -q --force
cat "$DEMO_DIR/out/$stem.minutes.md"
echo >&2
echo "== hark diagram / hark video $FILE" >&2
"$HARK" diagram "$DEMO_DIR/out/$stem.json" -o "$DEMO_DIR/out"
"$HARK" video "$FILE" --transcript "$DEMO_DIR/out/$stem.json" -o "$DEMO_DIR/out/$stem.mp4" -q
echo >&2
echo "== outputs in $DEMO_DIR/out:" >&2
ls -1 "$DEMO_DIR/out" >&2
