#!/usr/bin/env bash
# `hark analyze` / `hark search` end to end on the shared AMI meetings:
# outputs per meeting and for the corpus (JSON, Markdown, GraphML, Neo4j
# CSV), a rerun that reuses everything, search with meeting/turn/time,
# malformed inputs failing alone with their exit code, usage errors, and,
# against hark-llm-sim, resuming after Ctrl-C and after kill -9: the second
# run does not send again the chunks the first one finished.
set -u
bin=${HARK_BIN:-}
sim=${HARK_SIM_BIN:-}
shared=${HARK_SHARED:-../shared}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "FAIL: HARK_BIN not set"; exit 1; fi
if [ ! -d "$shared/meetings/ami" ]; then echo "skip: no shared meetings"; exit 77; fi
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_API_KEY \
  HARK_LLM_TIME_SCALE HARK_LLM_CACHE_TTL_S HARK_LLM_MAX_ATTEMPTS HARK_PROMPTS_DIR

tmp=$(mktemp -d)
simpid=
hpid=
cleanup() {
  for p in $hpid $simpid; do
    if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); a=sys.argv[2:]; print(eval(sys.argv[1]))' "$@"; }

# ---- offline, a folder ----
n_ami=$(ls "$shared"/meetings/ami/*.transcript.txt | wc -l)
"$bin" analyze "$shared/meetings/ami" -o "$tmp/out" --data "$tmp/data" -q --json >"$tmp/r1.json" 2>"$tmp/r1.err"
rc=$?
[ $rc -eq 0 ] || { bad "analyze folder exit $rc"; cat "$tmp/r1.err"; }
[ "$(py 'len(d["meetings"])' <"$tmp/r1.json")" = "$n_ami" ] || bad "report does not list $n_ami meetings"
[ "$(py 'sum(1 for m in d["meetings"] if m.get("method")=="offline" and not m["reused"])' <"$tmp/r1.json")" = "$n_ami" ] \
  || bad "not every meeting analysed offline"
for f in ES2004a.minutes.json ES2004a.minutes.md ES2004a.graph.json corpus.graph.json corpus.graphml \
  corpus.nodes.csv corpus.relationships.csv; do
  [ -s "$tmp/out/$f" ] || bad "missing output $f"
done
[ ! -e "$tmp/out/ES2004a.abssumm.minutes.json" ] || bad "reference summaries were analysed as transcripts"
py '"summary" in d and "action_items" in d and "participants" in d and "topics" in d' \
  <"$tmp/out/ES2004a.minutes.json" | grep -qx True || bad "minutes JSON lacks summary/action_items/participants/topics"
grep -q '^## Summary' "$tmp/out/ES2004a.minutes.md" || bad "minutes.md has no Summary section"
grep -q '<graphml' "$tmp/out/corpus.graphml" || bad "corpus.graphml is not GraphML"
head -n1 "$tmp/out/corpus.nodes.csv" | grep -q ':ID' || bad "nodes CSV header lacks :ID"
head -n1 "$tmp/out/corpus.relationships.csv" | grep -q ':START_ID' || bad "relationships CSV header lacks :START_ID"
# entities of several meetings merged in the corpus graph
py 'max(len(e["meetings"]) for e in d["entities"])>=2' <"$tmp/out/corpus.graph.json" | grep -qx True \
  || bad "no corpus entity spans two meetings"

# ---- rerun: everything reused ----
"$bin" analyze "$shared/meetings/ami" -o "$tmp/out2" --data "$tmp/data" -q --json >"$tmp/r2.json" 2>/dev/null \
  || bad "rerun failed"
[ "$(py 'sum(1 for m in d["meetings"] if m["reused"])' <"$tmp/r2.json")" = "$n_ami" ] || bad "rerun did not reuse every meeting"
cmp -s "$tmp/out/ES2004a.minutes.json" "$tmp/out2/ES2004a.minutes.json" || bad "reused minutes differ"

# ---- search ----
"$bin" search remote control --data "$tmp/data" --json >"$tmp/s.json" || bad "search failed"
py 'len(d["results"])>0 and all(r["meeting"] and r["kind"] for r in d["results"])' <"$tmp/s.json" | grep -qx True \
  || bad "search returned nothing useful"
"$bin" search remote --data "$tmp/data" --kind chunk --limit 3 --json | py 'len(d["results"])==3 and all(r["kind"]=="chunk" for r in d["results"])' \
  | grep -qx True || bad "search --kind/--limit not applied"
"$bin" search '***' --data "$tmp/data" >/dev/null 2>"$tmp/s.err"; rc=$?
[ $rc -eq 2 ] || bad "search with no words: exit $rc, expected 2"
"$bin" search x --data "$tmp/nodata" >/dev/null 2>&1; rc=$?
[ $rc -ne 0 ] || bad "search without a data directory succeeded"

# ---- malformed inputs fail alone ----
mkdir -p "$tmp/bad"
head -c 2000 /dev/urandom >"$tmp/bad/noise.txt"
printf '{"segments": [' >"$tmp/bad/broken.json"
printf 'Alice: We agreed to ship the widget on Monday.\nBob: I will write the release notes by Friday.\n' >"$tmp/bad/good.txt"
"$bin" analyze "$tmp/bad/noise.txt" "$tmp/bad/broken.json" "$tmp/bad/good.txt" -o "$tmp/badout" --data "$tmp/bdata" -q 2>"$tmp/bad.err"
rc=$?
[ $rc -eq 26 ] || bad "malformed inputs: exit $rc, expected 26 (malformed_input)"
grep -q 'noise.txt' "$tmp/bad.err" && grep -q 'broken.json' "$tmp/bad.err" || bad "errors do not name the files"
grep -q 'line 1' "$tmp/bad.err" || bad "JSON error has no position"
[ -s "$tmp/badout/good.minutes.json" ] || bad "the good file was not analysed"
: >"$tmp/bad/empty.txt"
"$bin" analyze "$tmp/bad/empty.txt" -o "$tmp/badout" --data "$tmp/bdata" -q 2>/dev/null; rc=$?
[ $rc -eq 17 ] || bad "empty transcript: exit $rc, expected 17"
"$bin" analyze "$tmp/bad/missing.txt" -o "$tmp/badout" --data "$tmp/bdata" -q 2>/dev/null; rc=$?
[ $rc -eq 14 ] || bad "missing file: exit $rc, expected 14"

# ---- run: transcribe, then analyze; the transcript is cached by content ----
clip=$shared/audio/jfk/jfk.wav
if [ -f "$clip" ]; then
  "$bin" run "$clip" -o "$tmp/runout" --data "$tmp/rdata" -q --json >"$tmp/run1.json" 2>"$tmp/run1.err"
  rc=$?
  [ $rc -eq 0 ] || { bad "run exit $rc"; cat "$tmp/run1.err"; }
  [ -s "$tmp/runout/jfk.json" ] || bad "run wrote no transcript"
  [ -s "$tmp/runout/jfk.minutes.json" ] || bad "run wrote no minutes"
  grep -qi 'country' "$tmp/runout/jfk.json" || bad "run transcript lacks the spoken words"
  py 'd["duration"] is None or d["duration"] > 5' <"$tmp/runout/jfk.minutes.json" | grep -qx True \
    || bad "run minutes have no duration from the audio"
  "$bin" run "$clip" -o "$tmp/runout" --data "$tmp/rdata" -q --json >"$tmp/run2.json" 2>/dev/null \
    || bad "second run failed"
  py 'd["meetings"][0]["reused"]' <"$tmp/run2.json" | grep -qx True || bad "second run analysed again"
  # the recording date comes from the container's metadata
  if command -v ffmpeg >/dev/null; then
    ffmpeg -v error -y -i "$clip" -metadata creation_time=2024-03-04T10:00:00Z -c:a aac "$tmp/dated.m4a" \
      && "$bin" run "$tmp/dated.m4a" -o "$tmp/runout" --data "$tmp/rdata" -q 2>/dev/null \
      && py 'd["date"]' <"$tmp/runout/dated.minutes.json" | grep -qx 2024-03-04 \
      || bad "run did not take the date from the media metadata"
  fi
  printf 'not audio at all\n' >"$tmp/notaudio.wav"
  "$bin" run "$tmp/notaudio.wav" -o "$tmp/runout" --data "$tmp/rdata" -q 2>/dev/null; rc=$?
  [ $rc -eq 18 ] || bad "run on a text file: exit $rc, expected 18 (not_media)"
fi

# ---- usage errors ----
"$bin" analyze >/dev/null 2>&1; [ $? -eq 2 ] || bad "no inputs is not a usage error"
"$bin" analyze --date 2024-13-01 "$tmp/bad/good.txt" >/dev/null 2>&1; [ $? -eq 2 ] || bad "bad --date accepted"
"$bin" analyze --batch 0 "$tmp/bad/good.txt" >/dev/null 2>&1; [ $? -eq 2 ] || bad "--batch 0 accepted"
"$bin" analyze --bogus "$tmp/bad/good.txt" >/dev/null 2>&1; [ $? -eq 2 ] || bad "unknown option accepted"
"$bin" analyze --help | grep -q -- '--date' || bad "analyze --help does not document --date"

# ---- resume after Ctrl-C and kill -9 (LLM path on the simulator) ----
if [ -n "$sim" ] && [ -x "$sim" ]; then
  cat >"$tmp/simcfg.json" <<EOF
{"models": [{"name": "m", "context_window": 32768, "max_output_tokens": 8192}],
 "latency": {"dist": "fixed", "s": 0.4}}
EOF
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
  cat >"$tmp/hark.json" <<EOF
{"providers":[{"name":"sim","base_url":"http://127.0.0.1:$port/v1","api_key_env":"HARK_T_KEY",
  "models":[{"name":"m","context_window":32768,"max_output_tokens":8192,"max_concurrency":1}]}],
 "routes":{"default":["sim/m"]}}
EOF
  export HARK_T_KEY=k
  mkdir -p "$tmp/llm"
  cp "$shared/meetings/ami/ES2004a.transcript.txt" "$shared/meetings/ami/ES2004b.transcript.txt" "$tmp/llm/"
  loglines() { if [ -f "$tmp/sim.jsonl" ]; then wc -l <"$tmp/sim.jsonl" | tr -d ' '; else echo 0; fi; }
  llm_args=(analyze "$tmp/llm" -o "$tmp/llmout" --data "$tmp/ldata" --config "$tmp/hark.json"
    --chunk-tokens 300 --overlap-tokens 30 --batch 2 -q --json)
  # wait_lines N: until the log has N lines (at most 60 s)
  wait_lines() { for _ in $(seq 600); do [ "$(loglines)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
  for sig in INT KILL; do
    rm -rf "$tmp/ldata" "$tmp/llmout"
    : >"$tmp/sim.jsonl"
    # hark itself in the background (not a subshell), so the signal reaches it
    "$bin" "${llm_args[@]}" >"$tmp/k1.json" 2>"$tmp/k1.err" &
    hpid=$!
    wait_lines 4 || bad "$sig: the first run sent nothing"
    kill -s $sig $hpid
    wait $hpid; rc=$?
    hpid=
    if [ $sig = INT ]; then
      [ $rc -eq 24 ] || { bad "Ctrl-C: exit $rc, expected 24 (canceled)"; cat "$tmp/k1.err"; }
    fi
    first=$(loglines)
    "$bin" "${llm_args[@]}" >"$tmp/k2.json" 2>"$tmp/k2.err"; rc=$?
    [ $rc -eq 0 ] || { bad "$sig: resumed run exit $rc"; cat "$tmp/k2.err"; }
    [ -s "$tmp/llmout/ES2004b.minutes.json" ] || bad "$sig: resumed run wrote no minutes"
    # chunks answered (200) in the first run and sent again in the second: at
    # most the one request in flight at the kill (max_concurrency 1, batch 2)
    python3 - "$tmp/sim.jsonl" "$first" >"$tmp/overlap.txt" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cut = int(sys.argv[2])
def ids(es):
    out = []
    for e in es:
        if "chat/completions" in e["path"] and e["status"] == 200:
            out += [c for c in e.get("chunks", []) if len(c) == 12 and all(x in "0123456789abcdef" for x in c)]
    return out
a, b = ids(lines[:cut]), ids(lines[cut:])
print(len(set(a)), len(set(b)), len(set(a) & set(b)))
PYEOF
    read -r sent1 sent2 both <"$tmp/overlap.txt"
    [ "${sent1:-0}" -gt 0 ] || bad "$sig: first run finished no extraction"
    [ "${sent2:-0}" -gt 0 ] || bad "$sig: second run sent nothing (was anything left?)"
    [ "${both:-99}" -le 2 ] || bad "$sig: $both chunks finished in run 1 were sent again"
    py 'all(m["method"]=="llm" for m in d["meetings"])' <"$tmp/k2.json" | grep -qx True || bad "$sig: resumed run not on the LLM path"
  done
fi
[ $fail -eq 0 ] && echo "ok"
exit $fail
