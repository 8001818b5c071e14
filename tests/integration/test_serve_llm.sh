#!/usr/bin/env bash
# `hark serve --config FILE` with LLM providers pointing at a running
# hark-llm-sim: the server starts, and /metrics carries every hark_llm_*
# series listed in docs/LLM.md's Metrics table (HELP/TYPE lines) plus one
# hark_llm_breaker_state sample per configured model, at 0 (closed). A
# config whose `providers` entry is invalid makes serve fail at start with a
# message naming the bad field and a nonzero exit, and so does the same
# mistake given through $HARK_CONFIG. Skips (77) only when the simulator
# binary is missing.
set -u
bin=${HARK_BIN:-}
sim=${HARK_SIM_BIN:-}
src=${HARK_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "$sim" ] || [ ! -x "$sim" ]; then echo "skip: hark-llm-sim not built (HARK_SIM_BIN)"; exit 77; fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "FAIL: HARK_BIN not set"; exit 1; fi
command -v curl >/dev/null || { echo "FAIL: curl missing"; exit 1; }
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_API_KEY \
  HARK_LLM_TIME_SCALE HARK_LLM_CACHE_TTL_S HARK_LLM_MAX_ATTEMPTS

tmp=$(mktemp -d)
simpid=
pid=
cleanup() {
  for p in $pid $simpid; do
    if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

wait_port() { # file pid -> prints the port
  for _ in $(seq 300); do
    if [ -s "$1" ] && grep -q . "$1"; then head -n 1 "$1"; return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

"$sim" --listen 127.0.0.1:0 --port-file "$tmp/simport" --log "$tmp/sim.jsonl" --time-scale 20 \
  >"$tmp/sim.out" 2>&1 &
simpid=$!
simport=$(wait_port "$tmp/simport" "$simpid") || { echo "FAIL: hark-llm-sim did not start"; cat "$tmp/sim.out"; exit 1; }
simbase=http://127.0.0.1:$simport

cat >"$tmp/serve.json" <<EOF
{"providers":[
   {"name":"p","base_url":"$simbase/v1","models":[
     {"name":"sim-small","context_window":16384,"rpm":600,"price_in":0.15,"price_out":0.6},
     {"name":"sim-embed","embedding":true}]},
   {"name":"q","base_url":"$simbase/v1","stream":true,"models":[
     {"name":"sim-large","context_window":131072}]}],
 "routes":{"summarize":["p/sim-small","q/sim-large"]},
 "llm":{"time_scale":20}}
EOF
models="p/sim-small p/sim-embed q/sim-large"

"$bin" serve --config "$tmp/serve.json" --listen 127.0.0.1:0 --data "$tmp/data" --no-auth \
  --workers 1 --port-file "$tmp/port" --drain-timeout 5 2>"$tmp/server.log" &
pid=$!
port=$(wait_port "$tmp/port" "$pid") || { echo "FAIL: serve did not start"; cat "$tmp/server.log"; exit 1; }
base=http://127.0.0.1:$port
for _ in $(seq 100); do
  [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$base/healthz")" = 200 ] && break
  sleep 0.05
done

curl -s --noproxy '*' "$base/metrics" >"$tmp/metrics.txt"
[ -s "$tmp/metrics.txt" ] || bad "/metrics is empty"
# every series the docs declare
series=$(sed -n '/^## Metrics/,/^## /p' "$src/docs/LLM.md" | grep -o 'hark_llm_[a-z_]*' | grep -v '_$' | sort -u)
[ -n "$series" ] || bad "no hark_llm_* series found in docs/LLM.md"
for s in $series; do
  grep -q "^# TYPE $s " "$tmp/metrics.txt" || bad "/metrics lacks the documented series $s"
done
grep -q '^# TYPE hark_llm_breaker_state gauge' "$tmp/metrics.txt" || bad "hark_llm_breaker_state is not a gauge"
grep -q '^# TYPE hark_llm_request_seconds histogram' "$tmp/metrics.txt" || bad "hark_llm_request_seconds is not a histogram"
for m in $models; do
  grep -q "^hark_llm_breaker_state{model=\"$m\"} 0\$" "$tmp/metrics.txt" ||
    bad "no closed breaker gauge for $m: $(grep hark_llm_breaker_state "$tmp/metrics.txt")"
done

kill -TERM "$pid"; wait "$pid"; rc=$?
pid=
[ $rc -eq 0 ] || bad "serve exited $rc on SIGTERM: $(tail -n 5 "$tmp/server.log")"
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:" "$tmp/server.log" && bad "sanitizer report from serve"

# a bad providers entry: serve refuses to start, naming the field
expect_refused() { # config-file what [env...]
  local f=$1 want=$2 rc p
  shift 2
  rm -f "$tmp/port2"
  if [ $# -gt 0 ]; then
    env "$@" "$bin" serve --listen 127.0.0.1:0 --data "$tmp/data2" --no-auth --workers 1 \
      --port-file "$tmp/port2" 2>"$tmp/bad.log" &
  else
    "$bin" serve --config "$f" --listen 127.0.0.1:0 --data "$tmp/data2" --no-auth --workers 1 \
      --port-file "$tmp/port2" 2>"$tmp/bad.log" &
  fi
  p=$!
  for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$p" 2>/dev/null; then
    kill -9 "$p"; wait "$p" 2>/dev/null
    bad "serve with a bad providers entry ($want) kept running"
    return
  fi
  wait "$p"; rc=$?
  [ $rc -ne 0 ] || bad "serve with a bad providers entry ($want) exited 0"
  [ -s "$tmp/port2" ] && bad "serve with a bad providers entry ($want) bound a port"
  grep -qF -- "$want" "$tmp/bad.log" || bad "serve's message does not name '$want': $(cat "$tmp/bad.log")"
}
printf '{"providers":[{"name":"p","base_url":"not a url","models":[{"name":"m"}]}]}' >"$tmp/bad1.json"
expect_refused "$tmp/bad1.json" "providers[0].base_url"
printf '{"providers":[{"name":"p","base_url":"%s/v1","models":[{"name":"m","price_inn":1}]}]}' "$simbase" >"$tmp/bad2.json"
expect_refused "$tmp/bad2.json" "price_inn"
printf '{"providers":[{"base_url":"%s/v1","models":[{"name":"m"}]}]}' "$simbase" >"$tmp/bad3.json"
expect_refused "$tmp/bad3.json" "providers[0].name"
printf '{"providers":{"name":"p"}}' >"$tmp/bad4.json"
expect_refused "$tmp/bad4.json" "providers"
expect_refused "" "providers[0].base_url" HARK_CONFIG="$tmp/bad1.json"

kill -TERM "$simpid"; wait "$simpid"; rc=$?
simpid=
[ $rc -eq 0 ] || bad "hark-llm-sim exited $rc on SIGTERM"
if [ $fail -ne 0 ]; then exit 1; fi
echo "ok"
