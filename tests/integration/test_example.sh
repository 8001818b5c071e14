#!/usr/bin/env bash
# The public-API example compiles (CMake builds it) and transcribes a real clip.
set -euo pipefail
EX="$HARK_BUILD_DIR/example_transcribe_file"
CLIP="$HARK_SHARED/audio/jfk/jfk.wav"
[ -f "$CLIP" ] || { echo "skip: $CLIP missing"; exit 77; }
out=$("$EX" "$CLIP" pocketsphinx)
echo "$out"
grep -q '^# engine=pocketsphinx duration=11.00s' <<<"$out"
grep -q -- '-->' <<<"$out"
grep -qi 'country' <<<"$out"
# errors come back as codes, not crashes
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
set +e
"$EX" /nonexistent.wav pocketsphinx 2>"$tmp/err.txt"; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q 'not_found' "$tmp/err.txt"
