#!/usr/bin/env bash
# LLM layer benchmark: the knowledge-graph extraction workload (bench_llm)
# against hark-llm-sim on a free loopback port, with the model limited to
# 500 RPM and 1,000,000 TPM and latency uniform in 15-40 simulated seconds.
# For each batch size (5, 10, 20) a fresh store runs the workload, then a
# rerun on the same store must be answered entirely from the cache (zero HTTP
# calls). Then the sequential baseline (one request in flight, batch 10) runs
# against a simulator with a much larger time scale, so it stays short while
# every figure is reported in simulated time; SEQ_SAMPLE=N instead runs only
# the first N sequential calls and extrapolates (the table says which).
# Prints a table and ends with the line
#   seed002 batch=10: time/bound=X.XX rerun_calls=N
# Builds nothing (build first). Run on an idle machine.
#   usage: bench/bench_llm.sh [BUILD_DIR]
#   env:   TIME_SCALE (30)  SEQ_TIME_SCALE (600)  SEQ_SAMPLE (0 = all calls)
#          BATCHES ("5 10 20")  OUT_PER_CHUNK (320: max_tokens per chunk)
#          CONCURRENCY (256: requests in flight at most)
#          PRICE_IN (0.15)  PRICE_OUT (0.60)  USD per 1M tokens
#          HARK_SHARED (../shared)
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIM=$BUILD/hark-llm-sim
BENCH=$BUILD/bench_llm
TIME_SCALE=${TIME_SCALE:-30}
SEQ_TIME_SCALE=${SEQ_TIME_SCALE:-600}
SEQ_SAMPLE=${SEQ_SAMPLE:-0}
BATCHES=${BATCHES:-"5 10 20"}
OUT_PER_CHUNK=${OUT_PER_CHUNK:-320}
CONCURRENCY=${CONCURRENCY:-256}
PRICE_IN=${PRICE_IN:-0.15}
PRICE_OUT=${PRICE_OUT:-0.60}
RPM=500
TPM=1000000
SEED=2
export HARK_SHARED=${HARK_SHARED:-$ROOT/../shared}
for f in "$SIM" "$BENCH"; do
  [ -x "$f" ] || { echo "bench_llm.sh: $f missing (build first)" >&2; exit 1; }
done
# the client must see only the config written here
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_TIME_SCALE \
  HARK_LLM_CACHE_TTL_S HARK_LLM_MAX_ATTEMPTS
export HARK_BENCH_SIM_KEY=bench-$$-$RANDOM

tmp=$(mktemp -d)
sim_pid=
stop_sim() {
  if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
    kill -TERM "$sim_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$sim_pid" 2>/dev/null || true
  fi
  [ -n "$sim_pid" ] && wait "$sim_pid" 2>/dev/null || true
  sim_pid=
}
trap 'stop_sim; [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

cat >"$tmp/sim.json" <<EOF
{"models": [{"name": "sim-small", "context_window": 131072, "max_output_tokens": 16384,
             "rpm": $RPM, "tpm": $TPM}],
 "window_s": 60,
 "latency": {"dist": "uniform", "min_s": 15, "max_s": 40}}
EOF

port=
# start_sim SCALE: starts the simulator, writes $tmp/llm-SCALE.json
start_sim() {
  local scale=$1
  rm -f "$tmp/port"
  "$SIM" --listen 127.0.0.1:0 --port-file "$tmp/port" --config "$tmp/sim.json" \
    --log "$tmp/sim-$scale.jsonl" --time-scale "$scale" --seed "$SEED" \
    --api-key "$HARK_BENCH_SIM_KEY" >"$tmp/sim-$scale.out" 2>"$tmp/sim-$scale.err" &
  sim_pid=$!
  for _ in $(seq 200); do
    [ -s "$tmp/port" ] && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$tmp/sim-$scale.err" >&2; exit 1; }
    sleep 0.05
  done
  [ -s "$tmp/port" ] || { echo "bench_llm.sh: simulator did not start" >&2; exit 1; }
  port=$(tr -d '[:space:]' <"$tmp/port")
  cat >"$tmp/llm-$scale.json" <<EOF
{"providers": [{"name": "sim", "base_url": "http://127.0.0.1:$port/v1",
                "api_key_env": "HARK_BENCH_SIM_KEY",
                "models": [{"name": "sim-small", "rpm": $RPM, "tpm": $TPM,
                            "max_concurrency": $CONCURRENCY, "price_in": $PRICE_IN,
                            "price_out": $PRICE_OUT, "context_window": 131072,
                            "max_output_tokens": 16384}]}],
 "routes": {"extract": ["sim/sim-small"]},
 "llm": {"time_scale": $scale}}
EOF
}

results=$tmp/results.txt
: >"$results"
status=0
# run_bench SCALE STORE ARGS...
run_bench() {
  local scale=$1 store=$2
  shift 2
  local rc=0
  "$BENCH" --config "$tmp/llm-$scale.json" --store "$store" --share "$ROOT/share" \
    --shared "$HARK_SHARED" --sim-url "http://127.0.0.1:$port" --sim-log "$tmp/sim-$scale.jsonl" \
    --seed "$SEED" --out-per-chunk "$OUT_PER_CHUNK" "$@" >"$tmp/run.out" || rc=$?
  cat "$tmp/run.out"
  grep '^RESULT ' "$tmp/run.out" >>"$results" || true
  if [ "$rc" -ne 0 ]; then
    echo "bench_llm.sh: bench_llm $* exited $rc" >&2
    status=1
  fi
  echo
}

echo "# LLM extraction benchmark — $(date -u +%F) — hark-llm-sim: $RPM RPM, $TPM TPM," \
  "latency uniform 15-40 s, time scale $TIME_SCALE (sequential: $SEQ_TIME_SCALE)"
echo
start_sim "$TIME_SCALE"
for b in $BATCHES; do
  run_bench "$TIME_SCALE" "$tmp/store-b$b" --batch "$b"
  run_bench "$TIME_SCALE" "$tmp/store-b$b" --batch "$b" --rerun
done
stop_sim

start_sim "$SEQ_TIME_SCALE"
if [ "$SEQ_SAMPLE" -gt 0 ]; then
  run_bench "$SEQ_TIME_SCALE" "$tmp/store-seq" --batch 10 --sequential --sample "$SEQ_SAMPLE"
else
  run_bench "$SEQ_TIME_SCALE" "$tmp/store-seq" --batch 10 --sequential
fi
stop_sim

# table from the RESULT lines (k=v pairs)
awk '
function v(k,   i, kv) {
  for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
  return ""
}
BEGIN {
  print "| run | batch | calls | HTTP | prompt tok | completion tok | tokens = sim | sim time (min) | bound (min) | time/bound | 429s | cost (USD) | failed |"
  print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}
{
  mode = v("mode"); if (v("extrapolated") == "1") mode = mode " (sample " v("submitted") ", extrapolated)"
  printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mode, v("batch"),
    v("calls"), v("sim_chat_requests"), v("prompt_tokens"), v("completion_tokens"),
    (v("tokens_agree") == "1" ? "yes" : "NO"), v("elapsed_sim_min"), v("bound_min"),
    v("time_over_bound"), v("sim_429"), v("cost_usd"), v("failed")
}' "$results"
echo

corpus=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^corpus=/) { sub(/^corpus=/, "", $i); print $i; exit } }' "$results")
tb=$(awk '/ mode=batch / && / batch=10 / { for (i = 2; i <= NF; i++) if ($i ~ /^time_over_bound=/) { sub(/^[^=]*=/, "", $i); print $i } }' "$results" | tail -1)
rr=$(awk '/ mode=rerun / && / batch=10 / { for (i = 2; i <= NF; i++) if ($i ~ /^sim_chat_requests=/) { sub(/^[^=]*=/, "", $i); print $i } }' "$results" | tail -1)
echo "${corpus:-seed002} batch=10: time/bound=${tb:-nan} rerun_calls=${rr:-nan}"
exit $status
