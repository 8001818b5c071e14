#!/usr/bin/env bash
# Diagram-video rendering benchmark: seconds of rendering per minute of
# video with the transcript given (no speech recognition: read transcript,
# build and lay out the diagram, paint frames with cairo, encode H.264 + AAC,
# mux), at 720p and 1080p, 30 fps, on the shared 30 s conversation
# (pyannote_sample.wav with its reference transcript) and on a 10-minute
# file made of that conversation repeated 20 times (transcript shifted to
# match). The anchor is the audio-to-diagram plan's target of 30 s of
# rendering per minute (Node + Chromium + Remotion); hark's own target is
# 5 s per minute at 720p on 2 cores. Each figure is the best of RUNS runs of
# the whole `hark video` command (wall time). Builds nothing (build first).
# Run on an idle machine.
#   usage: bench/bench_video.sh [BUILD_DIR]
#   env:   RUNS (3)  SIZES ("1280x720 1920x1080")  HARK_SHARED (../shared)
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HARK=$BUILD/hark
RUNS=${RUNS:-3}
SIZES=${SIZES:-"1280x720 1920x1080"}
export HARK_SHARED=${HARK_SHARED:-$ROOT/../shared}
[ -x "$HARK" ] || { echo "bench_video.sh: $HARK missing (build first)" >&2; exit 1; }
CONV=$HARK_SHARED/audio/conversation/pyannote_sample.wav
STM=$HARK_SHARED/audio/conversation/pyannote_sample.stm
[ -f "$CONV" ] && [ -f "$STM" ] || { echo "bench_video.sh: $CONV missing" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "bench_video.sh: ffmpeg missing" >&2; exit 1; }
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_PROMPTS_DIR

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# transcripts as SRT: the reference, and 20 copies shifted by the audio length
python3 - "$STM" "$tmp/conv.srt" "$tmp/long.srt" "$CONV" <<'EOF'
import subprocess, sys
stm, one, many, wav = sys.argv[1:5]
dur = float(subprocess.check_output(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                     "-of", "csv=p=0", wav]).decode().strip())
rows = []
for line in open(stm):
    f = line.split(None, 5)
    if len(f) == 6:
        rows.append((float(f[3]), float(f[4]), f[2], f[5].strip()))
def ts(x):
    ms = int(round(x * 1000)); h, ms = divmod(ms, 3600000); m, ms = divmod(ms, 60000); s, ms = divmod(ms, 1000)
    return "%02d:%02d:%02d,%03d" % (h, m, s, ms)
def write(path, copies):
    out, k = [], 0
    for c in range(copies):
        for a, b, spk, txt in rows:
            k += 1
            out.append("%d\n%s --> %s\n%s: %s\n" % (k, ts(a + c * dur), ts(b + c * dur), spk, txt))
    open(path, "w").write("\n".join(out))
write(one, 1)
write(many, 20)
EOF
for i in $(seq 20); do echo "file '$CONV'"; done >"$tmp/list.txt"
ffmpeg -v error -f concat -safe 0 -i "$tmp/list.txt" -c copy "$tmp/long.wav"

dur_of() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
host=$(uname -n)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# bench_video: $(date -u +%Y-%m-%dT%H:%MZ) on $host, $(nproc) cores ($cpu)"
echo "# seconds of rendering per minute of video (best of $RUNS; anchor: 30 s/min plan target)"
printf '%-28s %-10s %8s %8s %9s %8s %8s\n' input size video_s wall_s s_per_min vs_30s frames
last=""
for input in conv long; do
  wav=$CONV; [ $input = long ] && wav=$tmp/long.wav
  d=$(dur_of "$wav")
  for size in $SIZES; do
    best=
    for r in $(seq "$RUNS"); do
      t0=$(date +%s.%N)
      "$HARK" video "$wav" --transcript "$tmp/$input.srt" --size "$size" --fps 30 \
        -o "$tmp/out.mp4" -q --json >"$tmp/rep.json"
      t1=$(date +%s.%N)
      w=$(python3 -c "print('%.3f' % ($t1 - $t0))")
      if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $w < $best else 1)"; then best=$w; fi
    done
    frames=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frames"])' "$tmp/rep.json")
    spm=$(python3 -c "print('%.2f' % ($best / ($d / 60.0)))")
    ratio=$(python3 -c "print('%.1f' % (30.0 / $spm))")
    name=$([ $input = conv ] && echo "pyannote_sample.wav (30 s)" || echo "20x pyannote (10 min)")
    printf '%-28s %-10s %8.1f %8.2f %9s %7sx %8s\n' "$name" "$size" "$d" "$best" "$spm" "$ratio" "$frames"
    [ $input = long ] && [ "$size" = 1280x720 ] && last="video 10min 720p: s_per_min=$spm target=5 anchor=30 ratio=${ratio}x"
  done
done
echo "$last"
