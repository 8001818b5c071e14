#!/usr/bin/env bash
# `hark diagram` and `hark video` end to end: a spoken procedure (text) gets
# a flowchart whose spec validates and whose SVG/PNG are real images; a
# forced type; no structure falls back to a mind map; a long input is paged;
# real speech (shared audio, transcribed) gets a diagram; the MP4 of the
# shared 30 s conversation (with its reference transcript) and of JFK
# (transcribed) has one H.264 and one AAC stream, the audio's duration and
# fps x duration frames; with hark-llm-sim as the provider the validated
# answer is used, cached, and replaced by the offline spec when it never
# fits the schema; bad input (unknown type, missing file, no speech,
# silence, text given as audio, unwritable output) gets a clear error and
# exit code.
set -u
bin=${HARK_BIN:-}
shared=${HARK_SHARED:-../shared}
sim=${HARK_SIM_BIN:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "FAIL: HARK_BIN not set"; exit 1; fi
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }
command -v ffprobe >/dev/null || { echo "skip: ffprobe missing"; exit 77; }
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_API_KEY HARK_PROMPTS_DIR

tmp=$(mktemp -d)
simpid=
cleanup() {
  if [ -n "$simpid" ] && kill -0 "$simpid" 2>/dev/null; then kill -9 "$simpid"; wait "$simpid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); a=sys.argv[2:]; print(eval(sys.argv[1]))' "$@"; }
code_of() { echo $(( 10 + $1 )); }   # hark exit code of an error number

# spec checks shared by every output: ids unique, edges join nodes, times ordered
check_spec() {
  python3 - "$1" "$2" <<'EOF' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
want = sys.argv[2]
assert d["type"] in ("flowchart", "timeline", "mindmap", "hierarchy", "sequence"), d["type"]
if want != "any":
    assert d["type"] == want, (d["type"], want)
ids = [n["id"] for n in d["nodes"]]
assert ids and len(ids) == len(set(ids)), "ids"
for n in d["nodes"]:
    assert n["label"].strip(), "empty label"
    if n["start"] is not None and n["end"] is not None:
        assert n["end"] >= n["start"] >= 0, "span"
for e in d["edges"]:
    assert e["from"] in ids and e["to"] in ids, "edge ends"
assert 1 <= d["page"] <= d["pages"]
EOF
}
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$1")" -gt 2000 ]; }
is_svg() { head -c 200 "$1" | grep -q '<?xml' && grep -q '<svg' "$1"; }

# ---- a spoken procedure as text: auto -> flowchart ----
cat >"$tmp/order.txt" <<'EOF'
Ana: First, the customer submits the order form on the website.
Ana: Then we check whether the item is in stock.
Ana: If it is in stock, we pack it and ship it the same day.
Ana: Otherwise we email the customer a back-order notice.
Ana: After that the invoice is sent, and finally the order is closed.
EOF
"$bin" diagram "$tmp/order.txt" -o "$tmp/out" -q --json >"$tmp/r1.json" 2>"$tmp/r1.err"
rc=$?
[ $rc -eq 0 ] || { bad "diagram exit $rc"; cat "$tmp/r1.err"; }
check_spec "$tmp/out/order.diagram.json" flowchart || bad "order spec is not a valid flowchart"
is_svg "$tmp/out/order.svg" || bad "order.svg is not SVG"
is_png "$tmp/out/order.png" || bad "order.png is not a PNG"
[ "$(py 'd["method"]' <"$tmp/r1.json")" = offline ] || bad "report method is not offline"
[ "$(py 'd["type"]' <"$tmp/r1.json")" = flowchart ] || bad "report type is not flowchart"
# PNG size as asked
"$bin" diagram "$tmp/order.txt" -o "$tmp/out1080" --png-size 1920x1080 --dark -q || bad "dark 1080p diagram failed"
python3 - "$tmp/out1080/order.png" <<'EOF' || bad "PNG is not 1920x1080"
import struct, sys
b = open(sys.argv[1], "rb").read(24)
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (1920, 1080), (w, h)
EOF

# ---- forced types ----
for t in mindmap timeline hierarchy sequence flowchart; do
  "$bin" diagram "$tmp/order.txt" --type "$t" -o "$tmp/t-$t" -q 2>"$tmp/t.err" || { bad "--type $t failed"; cat "$tmp/t.err"; }
  check_spec "$tmp/t-$t/order.diagram.json" any || bad "--type $t spec invalid"
  is_png "$tmp/t-$t/order.png" || bad "--type $t PNG missing"
done

# ---- no structure -> a mind map of topics ----
printf 'Hello there.\nThe garden looks lovely and the roses smell wonderful.\n' >"$tmp/chat.txt"
"$bin" diagram "$tmp/chat.txt" -o "$tmp/out" -q || bad "unstructured text failed"
check_spec "$tmp/out/chat.diagram.json" mindmap || bad "unstructured text is not a mind map"

# ---- a long input is paged, never one hairball ----
python3 - "$tmp/long.txt" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1500):
        f.write("Lead: Step %d, then we move crate %d to bay %d. If the bay is full we wait, otherwise we continue.\n" % (i + 1, i * 7 % 97, i % 13))
EOF
"$bin" diagram "$tmp/long.txt" --type flowchart --max-pages 3 -o "$tmp/long" -q --json >"$tmp/long.json" 2>"$tmp/long.err" \
  || { bad "long input failed"; cat "$tmp/long.err"; }
[ "$(py 'd["pages"]' <"$tmp/long.json")" = 3 ] || bad "long input did not write 3 pages"
[ "$(py 'd["total_pages"]>3' <"$tmp/long.json")" = True ] || bad "long input total_pages not reported"
for p in "" .p2 .p3; do
  check_spec "$tmp/long/long$p.diagram.json" flowchart || bad "page '$p' spec invalid"
  is_png "$tmp/long/long$p.png" || bad "page '$p' PNG missing"
done
[ ! -e "$tmp/long/long.p4.png" ] || bad "more pages written than --max-pages"
[ "$(py 'len(d["nodes"])<=24' <"$tmp/long/long.diagram.json")" = True ] || bad "page over 24 nodes"

# ---- bad input ----
"$bin" diagram "$tmp/order.txt" --type pie -o "$tmp/x" 2>"$tmp/e.err"
[ $? -eq 2 ] || bad "unknown --type is not a usage error"
grep -q 'unknown --type' "$tmp/e.err" || bad "unknown --type message missing"
"$bin" diagram "$tmp/nope.txt" -o "$tmp/x" --json >"$tmp/e.json" 2>/dev/null
[ $? -eq "$(code_of 4)" ] || bad "missing input exit code"
py 'd["error"]["code"]' <"$tmp/e.json" >/dev/null 2>&1 || bad "missing input: no JSON error"
printf '   \n\n' >"$tmp/blank.txt"
"$bin" diagram "$tmp/blank.txt" -o "$tmp/x" 2>"$tmp/e.err"
[ $? -eq "$(code_of 7)" ] || bad "blank transcript is not an empty-input error"
touch "$tmp/afile"
"$bin" diagram "$tmp/order.txt" -o "$tmp/afile/sub" 2>"$tmp/e.err"
rc=$?
{ [ $rc -ne 0 ] && [ $rc -ne 2 ]; } || bad "unwritable output did not fail cleanly ($rc)"
"$bin" video "$tmp/order.txt" -o "$tmp/x.mp4" 2>"$tmp/e.err"
[ $? -eq "$(code_of 8)" ] || bad "text given to video is not a not-media error"
[ ! -e "$tmp/x.mp4" ] || bad "a failed video left a file"
"$bin" video "$tmp/nope.wav" -o "$tmp/x.mp4" 2>/dev/null
[ $? -eq "$(code_of 4)" ] || bad "video of a missing file"
"$bin" video "$tmp/nope.wav" --size 321x240 2>/dev/null
[ $? -eq 2 ] || bad "odd --size is not a usage error"

# ---- no speech: silence is an empty-input error, not a crash ----
if command -v sox >/dev/null; then
  sox -n -r 16000 -c 1 "$tmp/silence.wav" trim 0 3
  "$bin" diagram "$tmp/silence.wav" -o "$tmp/sil" 2>"$tmp/e.err"
  [ $? -eq "$(code_of 7)" ] || { bad "silence is not an empty-input error"; cat "$tmp/e.err"; }
  grep -q 'no speech' "$tmp/e.err" || bad "silence error does not say no speech"
  [ ! -e "$tmp/sil/silence.png" ] || bad "silence produced a diagram"
fi

# ---- with an LLM provider (the simulator): refined, validated, cached ----
if [ -n "$sim" ] && [ -x "$sim" ]; then
  echo '{"models": [{"name": "m", "context_window": 32768, "max_output_tokens": 8192}], "latency": {"dist": "fixed", "s": 0.1}}' >"$tmp/simcfg.json"
  "$sim" --listen 127.0.0.1:0 --port-file "$tmp/port" --config "$tmp/simcfg.json" --log "$tmp/sim.jsonl" \
    --time-scale 1 >"$tmp/sim.out" 2>&1 &
  simpid=$!
  port=
  for _ in $(seq 200); do
    if [ -s "$tmp/port" ]; then port=$(head -n 1 "$tmp/port"); break; fi
    kill -0 "$simpid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "FAIL: hark-llm-sim did not start"; cat "$tmp/sim.out"; exit 1; }
  printf '{"providers":[{"name":"sim","base_url":"http://127.0.0.1:%s/v1","api_key_env":"HARK_T_KEY","models":[{"name":"m","context_window":32768,"max_output_tokens":8192}]}],"routes":{"diagram":["sim/m"]}}\n' "$port" >"$tmp/hark.json"
  export HARK_T_KEY=k
  chats() { python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if l.strip() and "chat" in json.loads(l).get("kind", json.loads(l).get("path", ""))))' "$tmp/sim.jsonl"; }
  "$bin" diagram "$tmp/order.txt" -o "$tmp/llm" --config "$tmp/hark.json" --data "$tmp/ldata" -q --json \
    >"$tmp/l1.json" 2>"$tmp/l1.err" || { bad "diagram with a provider failed"; cat "$tmp/l1.err"; }
  [ "$(py 'd["method"]' <"$tmp/l1.json")" = llm ] || bad "provider answer not used"
  [ "$(py 'd["llm_calls"]' <"$tmp/l1.json")" = 1 ] || bad "not exactly one LLM call"
  check_spec "$tmp/llm/order.diagram.json" flowchart || bad "LLM spec invalid"
  grep -q '(refined)' "$tmp/llm/order.diagram.json" || bad "the spec is not the provider's answer"
  is_png "$tmp/llm/order.png" || bad "LLM PNG missing"
  n1=$(chats)
  [ "$n1" -ge 1 ] || bad "the simulator logged no chat request"
  "$bin" diagram "$tmp/order.txt" -o "$tmp/llm2" --config "$tmp/hark.json" --data "$tmp/ldata" -q \
    || bad "second run failed"
  n2=$(chats)
  [ "$n1" = "$n2" ] || bad "the unchanged request was sent again ($n1 -> $n2)"
  cmp -s "$tmp/llm/order.diagram.json" "$tmp/llm2/order.diagram.json" || bad "cached answer differs"
  # provider answers that never fit the schema: the offline spec, with a note
  printf 'Ana: First we open the box.\nAna: Then we check the parts. [[sim:wrong_schema times=all]]\nAna: If one is missing we call the shop, otherwise we build it.\n' >"$tmp/bad.txt"
  "$bin" diagram "$tmp/bad.txt" -o "$tmp/llm" --config "$tmp/hark.json" --data "$tmp/ldata" -q --json \
    >"$tmp/l3.json" 2>/dev/null || bad "invalid provider answers failed the diagram"
  [ "$(py 'd["method"]' <"$tmp/l3.json")" = offline ] || bad "invalid answers were used"
  [ -n "$(py 'd["note"]' <"$tmp/l3.json")" ] || bad "no note on the fallback"
  check_spec "$tmp/llm/bad.diagram.json" any || bad "fallback spec invalid"
  "$bin" diagram "$tmp/order.txt" -o "$tmp/off" --config "$tmp/hark.json" --offline -q --json >"$tmp/l4.json" \
    || bad "--offline failed"
  [ "$(py 'd["method"]' <"$tmp/l4.json")" = offline ] || bad "--offline used the provider"
fi

# ---- video probes ----
probe() { # file -> "vcodec acodec nb_frames duration vstreams astreams"
  ffprobe -v error -count_frames -show_entries stream=codec_type,codec_name,nb_read_frames \
    -show_entries format=duration -of json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = [s for s in d["streams"] if s["codec_type"] == "video"]
a = [s for s in d["streams"] if s["codec_type"] == "audio"]
print(v[0]["codec_name"] if v else "-", a[0]["codec_name"] if a else "-",
      v[0].get("nb_read_frames", "0") if v else 0, d["format"]["duration"], len(v), len(a))'
}
audio_dur() { ffprobe -v error -show_entries stream=duration -select_streams a:0 -of csv=p=0 "$1"; }
check_video() { # mp4 audio fps
  local got; got=$(probe "$1") || { bad "ffprobe failed on $1"; return; }
  read -r vc ac nf dur nv na <<<"$got"
  local ad; ad=$(audio_dur "$2")
  [ "$vc" = h264 ] || bad "$1: video codec $vc"
  [ "$ac" = aac ] || bad "$1: audio codec $ac"
  [ "$nv" = 1 ] && [ "$na" = 1 ] || bad "$1: $nv video / $na audio streams"
  python3 -c "import sys; d,a=float('$dur'),float('$ad'); sys.exit(0 if abs(d-a)<=0.1 else 1)" \
    || bad "$1: duration $dur vs audio $ad"
  python3 -c "import sys; n,a,f=int('$nf'),float('$ad'),int('$3'); sys.exit(0 if n==round(a*f) else 1)" \
    || bad "$1: $nf frames for ${ad}s at $3 fps"
}

conv=$shared/audio/conversation/pyannote_sample.wav
if [ -f "$conv" ]; then
  # the reference transcript as SRT
  python3 - "$shared/audio/conversation/pyannote_sample.stm" "$tmp/conv.srt" <<'EOF'
import sys
def ts(x):
    ms = int(round(x * 1000)); h, ms = divmod(ms, 3600000); m, ms = divmod(ms, 60000); s, ms = divmod(ms, 1000)
    return "%02d:%02d:%02d,%03d" % (h, m, s, ms)
out = []
for i, line in enumerate(l for l in open(sys.argv[1]) if l.strip()):
    f = line.split(None, 5)
    out.append("%d\n%s --> %s\n%s: %s\n" % (i + 1, ts(float(f[3])), ts(float(f[4])), f[2], f[5].strip()))
open(sys.argv[2], "w").write("\n".join(out))
EOF
  "$bin" video "$conv" --transcript "$tmp/conv.srt" -o "$tmp/conv.mp4" --size 640x360 --fps 15 -q --json \
    >"$tmp/v1.json" 2>"$tmp/v1.err" || { bad "video with transcript failed"; cat "$tmp/v1.err"; }
  check_video "$tmp/conv.mp4" "$conv" 15
  [ "$(py 'd["frames"]>d["painted"]>0' <"$tmp/v1.json")" = True ] || bad "unchanged frames were painted again"
  "$bin" diagram "$tmp/conv.srt" -o "$tmp/out" -q || bad "diagram of the conversation SRT failed"
  check_spec "$tmp/out/conv.diagram.json" any || bad "conversation spec invalid"
  ls "$tmp"/*.tmp* >/dev/null 2>&1 && bad "temporary files left behind"
else
  echo "note: $conv missing, conversation video skipped"
fi

jfk=$shared/audio/jfk/jfk.wav
if [ -f "$jfk" ]; then
  # audio in: transcribed (PocketSphinx without Whisper weights), then drawn
  "$bin" diagram "$jfk" -o "$tmp/jfk" -q --json >"$tmp/j.json" 2>"$tmp/j.err" || { bad "diagram of audio failed"; cat "$tmp/j.err"; }
  check_spec "$tmp/jfk/jfk.diagram.json" any || bad "jfk spec invalid"
  [ "$(py 'd["duration"] is not None and abs(d["duration"]-11.0)<0.2' <"$tmp/jfk/jfk.diagram.json")" = True ] \
    || bad "jfk spec duration is not the audio's"
  is_svg "$tmp/jfk/jfk.svg" || bad "jfk.svg missing"
  "$bin" video "$jfk" -o "$tmp/jfk.mp4" --size 320x240 --fps 10 -q 2>"$tmp/jv.err" || { bad "video of audio failed"; cat "$tmp/jv.err"; }
  check_video "$tmp/jfk.mp4" "$jfk" 10
else
  echo "note: $jfk missing, audio input skipped"
fi

[ $fail -eq 0 ] && echo "ok"
exit $fail
