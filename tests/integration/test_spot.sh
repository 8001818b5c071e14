#!/usr/bin/env bash
# `hark spot` end to end on real speech: JFK says "americans" (~1.7 s) and
# "country" (~6 s and ~10 s) in jfk.wav; a word he does not say ("budget")
# yields no hit; txt and json outputs agree; an unknown word, a bad threshold,
# a missing file and no keywords fail with the documented exit codes.
set -u
bin=${HARK_BIN:-}
shared=${HARK_SHARED:-}
clip=$shared/audio/jfk/jfk.wav
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "skip: HARK_BIN not set"; exit 77; fi
if [ ! -f "$clip" ]; then echo "skip: $clip missing"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# txt: "HH:MM:SS.mmm  keyword  score"
"$bin" spot "$clip" --keywords "americans, country,budget" -q >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
cat "$tmp/out.txt"
[ $rc -eq 0 ] || bad "spot exit $rc: $(cat "$tmp/err.txt")"
grep -Eqv '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}  [a-z ]+  [0-9]\.[0-9]{3}$' "$tmp/out.txt" &&
  bad "malformed line in txt output"
# seconds of each hit of a keyword
secs() { awk -v k="$1" -F'  ' '$2 == k { split($1, t, ":"); print t[1] * 3600 + t[2] * 60 + t[3] }' "$tmp/out.txt"; }
near() { # near KEYWORD TIME: some hit within 0.5 s of TIME
  for s in $(secs "$1"); do
    awk -v s="$s" -v t="$2" 'BEGIN { d = s - t; if (d < 0) d = -d; exit !(d <= 0.5) }' && return 0
  done
  return 1
}
near americans 1.7 || bad "no 'americans' hit near 1.7 s"
near country 6.0 || bad "no 'country' hit near 6.0 s"
near country 10.2 || bad "no 'country' hit near 10.2 s"
[ -z "$(secs budget)" ] || bad "'budget' is not spoken but was spotted"

# json lines carry the same hits
"$bin" spot "$clip" --keywords "americans,country,budget" --format json -q >"$tmp/out.json" || bad "json exit $?"
[ "$(wc -l <"$tmp/out.json")" -eq "$(wc -l <"$tmp/out.txt")" ] || bad "json and txt hit counts differ"
grep -q '"keyword":"americans"' "$tmp/out.json" || bad "json lacks americans"
grep -q '"keyword":"budget"' "$tmp/out.json" && bad "json has budget"

# errors
"$bin" spot "$clip" --keywords "country,zqxjkv" -q >/dev/null 2>"$tmp/err.txt"
rc=$?
[ $rc -eq 2 ] || bad "unknown word: exit $rc, want 2"
grep -q zqxjkv "$tmp/err.txt" || bad "unknown-word error does not name the word"
"$bin" spot "$clip" --keywords country --threshold 5 -q >/dev/null 2>&1
[ $? -eq 2 ] || bad "bad threshold accepted"
"$bin" spot "$clip" -q >/dev/null 2>&1
[ $? -eq 2 ] || bad "missing --keywords accepted"
"$bin" spot "$tmp/nope.wav" --keywords country -q >/dev/null 2>&1
rc=$?
[ $rc -eq 14 ] || bad "missing file: exit $rc, want 14 (not_found)"
printf 'not audio at all\n' >"$tmp/text.wav"
"$bin" spot "$tmp/text.wav" --keywords country -q >/dev/null 2>&1
rc=$?
[ $rc -ne 0 ] || bad "text file accepted as audio"
exit $fail
