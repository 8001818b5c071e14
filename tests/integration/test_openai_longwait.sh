#!/usr/bin/env bash
# POST /v1/audio/transcriptions answers only when its job ends: a chunked
# upload (as OpenAI's Node client sends it) whose transcription runs far
# longer than the server's connection timeout must still get its 200 and
# transcript. The server runs with client_timeout_s 1 (a 6 s connection
# timeout) and transcribes a 60 s conversation with PocketSphinx on one
# thread, which takes well over that.
set -u
bin=${HARK_BIN:-}
shared=${HARK_SHARED:-../shared}
src=$shared/audio/conversation/pyannote_sample.wav
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "skip: HARK_BIN not set"; exit 77; fi
if [ ! -f "$src" ]; then echo "skip: $src missing"; exit 77; fi
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }
command -v sox >/dev/null || { echo "skip: sox missing"; exit 77; }

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
sox "$src" "$src" "$tmp/long.wav" || { echo "FAIL: sox"; exit 1; }
printf '{"client_timeout_s":1,"min_free_disk_mb":1}\n' >"$tmp/config.json"
"$bin" serve --listen 127.0.0.1:0 --data "$tmp/data" --no-auth --workers 1 --threads 1 \
  --engine pocketsphinx --config "$tmp/config.json" --port-file "$tmp/port" 2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 300); do
  if [ -s "$tmp/port" ]; then port=$(cat "$tmp/port"); break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: server did not start"; cat "$tmp/server.log"; exit 1; }
start=$(date +%s)
code=$(curl -s --noproxy '*' -o "$tmp/out.json" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
  -F file=@"$tmp/long.wav" -F model=whisper-1 "http://127.0.0.1:$port/v1/audio/transcriptions")
took=$(( $(date +%s) - start ))
fail=0
[ "$code" = 200 ] || { echo "FAIL: status $code after $took s"; fail=1; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["text"].split()) > 20' "$tmp/out.json" 2>/dev/null \
  || { echo "FAIL: no transcript in the answer"; head -c 300 "$tmp/out.json"; fail=1; }
# the wait must really have outlived the 6 s connection timeout
[ "$took" -ge 7 ] || echo "note: the transcription took only $took s"
[ $fail -eq 0 ] && echo "ok ($took s)"
[ $fail -eq 0 ] || tail -n 5 "$tmp/server.log"
exit $fail
