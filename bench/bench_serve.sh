#!/usr/bin/env bash
# Job-server load benchmark: starts `hark serve --no-auth` on 127.0.0.1 (a
# fresh data directory per mode, per-IP rate limit lifted in its config) and
# drives it with bench_serve (epoll, keep-alive, loopback only):
#   submit  $CONNS concurrent clients POSTing noop jobs for $DURATION s
#           (latency percentiles, requests/s);
#   queue   $JOBS noop jobs submitted as fast as possible over $QCONNS
#           connections, timed until all are done (jobs/s end to end);
#   sse     $STREAMS idle SSE streams held for $HOLD s on a queued job (behind
#           a long transcription on one worker), with the server's RSS and fds.
# Builds nothing (run `make build` first). Prints a markdown block for
# docs/BENCHMARKS.md. Run on an idle machine; SMOKE=1 runs tiny sizes only.
#   usage: bench/bench_serve.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
HARK=$BUILD/hark
BENCH=$BUILD/bench_serve
SHARED=${HARK_SHARED:-$(pwd)/../shared}
if [ "${SMOKE:-0}" = 1 ]; then
  CONNS=${CONNS:-8}; DURATION=${DURATION:-1}; JOBS=${JOBS:-100}; QCONNS=${QCONNS:-4}
  STREAMS=${STREAMS:-50}; HOLD=${HOLD:-1}; LONG_S=${LONG_S:-120}
else
  CONNS=${CONNS:-1000}; DURATION=${DURATION:-10}; JOBS=${JOBS:-10000}; QCONNS=${QCONNS:-64}
  STREAMS=${STREAMS:-10000}; HOLD=${HOLD:-10}; LONG_S=${LONG_S:-600}
fi
WORKERS=${WORKERS:-$(nproc)}
for f in "$HARK" "$BENCH"; do
  [ -x "$f" ] || { echo "bench_serve.sh: $f missing (build first)" >&2; exit 1; }
done

# File descriptors: the streams, their server-side sockets and some slack.
need=$((STREAMS + CONNS + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  echo "bench_serve.sh: ulimit -Hn is $hard, need $need (raise the hard limit)" >&2; exit 1
fi
ulimit -n "$need"

tmp=$(mktemp -d)
pid=
stop_server() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=
}
trap 'stop_server; rm -rf "$tmp"' EXIT
printf '{"anon_rate":{"rps":1000000,"burst":1000000},"min_free_disk_mb":1,"ttl_days":0}\n' >"$tmp/config.json"

port=
start_server() { # name workers -> sets pid, port
  local dir=$tmp/$1
  mkdir -p "$dir"
  "$HARK" serve --no-auth --listen 127.0.0.1:0 --data "$dir/data" --port-file "$dir/port" \
    --config "$tmp/config.json" --workers "$2" --threads 1 --engine pocketsphinx --drain-timeout 1 2>"$dir/server.log" &
  pid=$!
  port=
  for _ in $(seq 300); do
    if [ -s "$dir/port" ] && curl -sf --noproxy '*' "http://127.0.0.1:$(cat "$dir/port")/healthz" >/dev/null 2>&1; then
      port=$(cat "$dir/port"); return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench_serve.sh: server did not start:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1
}

kv() { # line key -> value
  printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

echo "## hark serve load — $(date -u +%F) — $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "Command: \`bench/bench_serve.sh $BUILD\` (CONNS=$CONNS DURATION=$DURATION JOBS=$JOBS QCONNS=$QCONNS STREAMS=$STREAMS HOLD=$HOLD WORKERS=$WORKERS); server: \`hark serve --no-auth --workers $WORKERS --threads 1 --engine pocketsphinx --drain-timeout 1\`, client and server on the same machine over 127.0.0.1."
echo

# ---- submit --------------------------------------------------------------
start_server submit "$WORKERS"
sub=$("$BENCH" submit --port "$port" --conns "$CONNS" --duration "$DURATION") || true
stop_server
echo "[submit] $sub" >&2

# ---- queue ---------------------------------------------------------------
start_server queue "$WORKERS"
que=$("$BENCH" queue --port "$port" --jobs "$JOBS" --conns "$QCONNS") || true
stop_server
echo "[queue] $que" >&2

# ---- sse -----------------------------------------------------------------
# A long transcription holds the only worker; the streams follow a noop job
# queued behind it, so they stay open and idle.
mapfile -t clips < <(printf '%s\n' "$SHARED/audio/jfk/jfk.wav" "$SHARED/audio/conversation/pyannote_sample.wav")
i=0; list=()
for c in "${clips[@]}"; do sox -q "$c" -r 16000 -c 1 -b 16 "$tmp/c$i.wav"; list+=("$tmp/c$i.wav"); i=$((i + 1)); done
cat_list=(); total=0; k=0
while [ "$total" -lt "$LONG_S" ]; do
  f=${list[$((k % i))]}; cat_list+=("$f")
  total=$((total + $(soxi -D "$f" | cut -d. -f1))); k=$((k + 1))
done
sox -q "${cat_list[@]}" "$tmp/long.wav" trim 0 "$LONG_S"
start_server sse 1
curl -sf --noproxy '*' -F "file=@$tmp/long.wav" "http://127.0.0.1:$port/v1/jobs" >"$tmp/long.json"
long_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/long.json")
job=$(curl -sf --noproxy '*' -H 'Content-Type: application/json' -d '{"type":"noop"}' \
  "http://127.0.0.1:$port/v1/jobs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# measure from a steady state: the model is loaded and the long job runs
for _ in $(seq 600); do
  curl -sf --noproxy '*' "http://127.0.0.1:$port/v1/jobs/$long_id/progress" | python3 -c \
    'import json,sys; p=json.load(sys.stdin); sys.exit(0 if p["status"]=="running" and p["percent"]>0 else 1)' && break
  sleep 0.1
done
sse=$("$BENCH" sse --port "$port" --job "$job" --streams "$STREAMS" --hold "$HOLD" --pid "$pid") || true
stop_server
echo "[sse] $sse" >&2

echo "| benchmark | parameters | result |"
echo "|---|---|---|"
if [ -n "$sub" ]; then
  echo "| submit noop jobs | $(kv "$sub" conns) keep-alive clients, $(kv "$sub" duration_s) s | $(kv "$sub" rps) req/s; latency p50 $(kv "$sub" p50_ms) ms, p90 $(kv "$sub" p90_ms) ms, p99 $(kv "$sub" p99_ms) ms, max $(kv "$sub" max_ms) ms; $(kv "$sub" s2xx) x 2xx, $(kv "$sub" s429) x 429, $(kv "$sub" s503) x 503, $(kv "$sub" s5xx) x other 5xx, $(kv "$sub" errors) transport errors |"
fi
if [ -n "$que" ]; then
  echo "| queue throughput | $(kv "$que" jobs) noop jobs over $(kv "$que" conns) connections, $WORKERS workers | submitted at $(kv "$que" submit_rps) jobs/s ($(kv "$que" submit_s) s); all done after $(kv "$que" all_done_s) s = $(kv "$que" jobs_per_s) jobs/s end to end (complete: $(kv "$que" complete)) |"
fi
if [ -n "$sse" ]; then
  echo "| idle SSE streams | $(kv "$sse" streams) streams on one queued job, held $(kv "$sse" hold_s) s | $(kv "$sse" held) held ($(kv "$sse" failed) failed) after $(kv "$sse" open_s) s to open; server RSS $(kv "$sse" server_rss_before_mb) MB before, $(kv "$sse" server_rss_held_mb) MB holding ($(kv "$sse" rss_per_stream_kb) KB/stream), $(kv "$sse" server_rss_after_mb) MB after; server fds $(kv "$sse" server_fds_before) -> $(kv "$sse" server_fds_held) |"
fi
