#!/usr/bin/env bash
# Smoke test of `hark serve`: starts the server on a free port (--port-file),
# checks that the first stderr line is the JSON "listening" line with that
# port, that /healthz answers, that a noop job submitted over HTTP runs to
# "done" (polled through GET /v1/jobs/{id}) and that its event stream replays
# queued -> running -> done; then SIGTERM must drain the server and make it
# exit 0, and a second server on the same data directory must be refused
# while the first one runs. Skips (77) while `hark serve` is unavailable.
set -u
bin=${HARK_BIN:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "skip: HARK_BIN not set"; exit 77; fi
if ! "$bin" serve --help >/dev/null 2>&1; then echo "skip: hark serve not available"; exit 77; fi
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

"$bin" serve --listen 127.0.0.1:0 --data "$tmp/data" --no-auth --workers 1 \
  --port-file "$tmp/port" --drain-timeout 5 2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 200); do
  [ -s "$tmp/port" ] && { port=$(cat "$tmp/port"); break; }
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: no port file"; cat "$tmp/server.log"; exit 1; }
base=http://127.0.0.1:$port

first=$(head -n 1 "$tmp/server.log")
[ "$(printf '%s' "$first" | jget '["msg"]')" = listening ] || bad "first log line is not 'listening': $first"
[ "$(printf '%s' "$first" | jget '["port"]')" = "$port" ] || bad "listening line port differs from $port: $first"

out=$(curl -s --noproxy '*' -D "$tmp/h" "$base/healthz")
[ "$out" = '{"status":"ok"}' ] || bad "healthz body: $out"
grep -qi '^x-request-id: ' "$tmp/h" || bad "healthz without X-Request-Id"

# a second server on the same directory is refused
"$bin" serve --listen 127.0.0.1:0 --data "$tmp/data" --no-auth 2>"$tmp/second.log" &
p2=$!
for _ in $(seq 100); do kill -0 "$p2" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$p2" 2>/dev/null; then
  kill -9 "$p2"; bad "second server on the same data directory kept running"
else
  wait "$p2"; rc=$?
  [ $rc -ne 0 ] || bad "second server exited 0"
  grep -q "hark.lock" "$tmp/second.log" || bad "second server error does not name the lock: $(cat "$tmp/second.log")"
fi

code=$(curl -s --noproxy '*' -o "$tmp/sub.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"type":"noop"}' "$base/v1/jobs")
[ "$code" = 202 ] || bad "noop submit answered $code: $(cat "$tmp/sub.json")"
id=$(jget '["id"]' <"$tmp/sub.json")
case "$id" in job_*) ;; *) bad "no job id in $(cat "$tmp/sub.json")"; id=job_x ;; esac

status=
for _ in $(seq 100); do
  status=$(curl -s --noproxy '*' "$base/v1/jobs/$id" | jget '["status"]' 2>/dev/null)
  [ "$status" = done ] && break
  sleep 0.05
done
[ "$status" = done ] || bad "noop job did not finish (status $status)"

curl -s --noproxy '*' -m 5 "$base/v1/jobs/$id/events" >"$tmp/events.txt"
types=$(grep '^event: ' "$tmp/events.txt" | cut -d' ' -f2 | tr '\n' ' ')
[ "$types" = "queued running done " ] || bad "event stream types: '$types'"

code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$base/v1/jobs/job_00000000000000000000000000")
[ "$code" = 404 ] || bad "unknown job answered $code"

kill -TERM "$pid"
rc=
for _ in $(seq 200); do
  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; rc=$?; break; fi
  sleep 0.05
done
[ -n "$rc" ] || bad "server still running 10 s after SIGTERM"
[ "${rc:-1}" = 0 ] || bad "server exit code $rc after SIGTERM"
grep -q '"msg":"drained"' "$tmp/server.log" || bad "no drained log line"
pid=

if [ $fail -ne 0 ]; then echo "--- server log"; tail -n 30 "$tmp/server.log"; exit 1; fi
echo "ok: healthz, noop job to done, events, lock, SIGTERM exit 0"
