#!/usr/bin/env bash
# Every bad input to `hark transcribe` gets a one-line error naming the file
# and the reason, a distinct exit code (10 + error number) and, with
# --format json, a JSON error object with a stable code. Never a crash.
set -uo pipefail
HARK=${HARK_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# fixtures
printf 'This is plain text, not audio.\n%.0s' {1..50} > "$tmp/notes.wav"
: > "$tmp/empty.wav"
mkdir -p "$tmp/adir"
ff -f lavfi -i "sine=frequency=440:duration=5" -ar 44100 -b:a 64k "$tmp/tone.mp3"
head -c 300 "$tmp/tone.mp3" > "$tmp/trunc_tiny.mp3"
head -c "$(( $(stat -c %s "$tmp/tone.mp3") / 3 ))" "$tmp/tone.mp3" > "$tmp/trunc_third.mp3"
ff -f lavfi -i "testsrc=size=64x64:rate=10:duration=2" -an -c:v mpeg4 "$tmp/silent_video.mp4"
head -c 4096 /dev/urandom > "$tmp/garbage.bin"
# WAV whose format tag names a codec FFmpeg cannot decode (0x0160 WMAv1 inside RIFF
# with nonsense extradata is decodable; use a private tag instead).
python3 - "$tmp/unsupported.wav" <<'PY'
import struct, sys
data = bytes(16000)
fmt = struct.pack('<HHIIHH', 0x7A21, 1, 16000, 32000, 2, 16)  # unknown codec tag
riff = b'WAVE' + b'fmt ' + struct.pack('<I', len(fmt)) + fmt + b'data' + struct.pack('<I', len(data)) + data
open(sys.argv[1], 'wb').write(b'RIFF' + struct.pack('<I', len(riff)) + riff)
PY

# expect NAME FILE EXIT_CODE JSON_CODE [extra args...]: the one stderr line must
# name FILE (or the model, for -m cases)
expect() {
  local name=$1 file=$2 want=$3 code=$4; shift 4
  local out err rc
  out=$("$HARK" transcribe "$file" --format json -q -e pocketsphinx "$@" 2>"$tmp/err")
  rc=$?
  err=$(cat "$tmp/err")
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, want $want; stderr: $err"; fail=1; return
  fi
  local subject=$file
  [ "${1:-}" = -m ] && subject=$2   # model errors name the model
  if [ "$(grep -c . "$tmp/err")" -ne 1 ] || ! grep -qF "$subject" "$tmp/err"; then
    echo "FAIL $name: want one stderr line naming the file, got: $err"; fail=1; return
  fi
  if ! grep -q "\"code\":\"$code\"" <<<"$out"; then
    echo "FAIL $name: JSON error code $code missing in: $out"; fail=1; return
  fi
  echo "ok   $name: exit $rc [$code] $err"
}

expect text-as-wav   "$tmp/notes.wav"          18 not_media
expect zero-length   "$tmp/empty.wav"          17 empty_input
expect directory     "$tmp/adir"               15 is_directory
expect missing       "$tmp/does-not-exist.wav" 14 not_found
expect video-no-audio "$tmp/silent_video.mp4"  19 no_audio_stream
expect garbage       "$tmp/garbage.bin"        18 not_media
expect tiny-truncated-mp3 "$tmp/trunc_tiny.mp3" 20 corrupt_media
expect unsupported-codec "$tmp/unsupported.wav" 21 unsupported_format
expect bad-model     "$tmp/tone.mp3"           22 model_error -m "$tmp/notes.wav"
expect missing-model "$tmp/tone.mp3"           22 model_error -m "$tmp/nope/model.bin"
expect text-as-whisper-model "$tmp/tone.mp3"   22 model_error -m "$tmp/notes.wav" -e whisper
expect missing-whisper-model "$tmp/tone.mp3"   22 model_error -m "$tmp/nope/ggml-x.bin" -e whisper
if [ -f "$HARK_SHARED/whisper/models/micro-en.bin" ]; then
  head -c 100000 "$HARK_SHARED/whisper/models/micro-en.bin" > "$tmp/trunc-model.bin"
  expect truncated-whisper-model "$tmp/tone.mp3" 22 model_error -m "$tmp/trunc-model.bin" -e auto
fi

# a truncated but partly decodable mp3 is transcribed (its prefix), not rejected
"$HARK" transcribe "$tmp/trunc_third.mp3" -q -e pocketsphinx --format json > "$tmp/t.json" 2>"$tmp/err"
rc=$?
if [ $rc -ne 0 ] || ! python3 -c "import json,sys; d=json.load(open('$tmp/t.json')); assert 0.5 < d['duration'] < 3.0, d['duration']"; then
  echo "FAIL truncated-third: rc=$rc $(cat "$tmp/err")"; fail=1
else echo "ok   truncated-third: prefix transcribed"; fi

# several files: the good one is written, the bad ones reported, exit = the failure's code
"$HARK" transcribe "$tmp/tone.mp3" "$tmp/notes.wav" "$tmp/empty.wav" -q -e pocketsphinx -o "$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 1 ] || [ ! -f "$tmp/out/tone.txt" ] || [ "$(grep -c '^hark: ' "$tmp/err")" -lt 2 ]; then
  echo "FAIL multi: rc=$rc $(cat "$tmp/err")"; fail=1
else echo "ok   multi: mixed failures exit 1, good file written"; fi
"$HARK" transcribe "$tmp/tone.mp3" "$tmp/notes.wav" -q -e pocketsphinx -o "$tmp/out2" 2>/dev/null
rc=$?
[ $rc -eq 18 ] && [ -f "$tmp/out2/tone.txt" ] || { echo "FAIL multi-one: rc=$rc"; fail=1; }

# usage errors
"$HARK" transcribe 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL no-args"; fail=1; }
"$HARK" transcribe "$tmp/tone.mp3" --format docx 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL bad-format"; fail=1; }
"$HARK" transcribe "$tmp/tone.mp3" --engine nope 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL bad-engine"; fail=1; }
"$HARK" transcribe "$tmp/tone.mp3" --offset abc 2>/dev/null; [ $? -eq 2 ] || { echo "FAIL bad-offset"; fail=1; }

exit $fail
