#!/usr/bin/env bash
# Meeting-analysis benchmark (bench_analyze) on the shared meetings:
#  1. quality and speed of the offline analyzer: ROUGE-1/2/L of its summaries
#     against the human references next to TextRank and lead-N baselines, a
#     per-meeting table of what it finds, and meetings per second;
#  2. the LLM path (map: batched extraction; reduce: one summary request per
#     meeting) on the knowledge-graph plan's corpus (bench_llm's seed002: 150
#     transcripts built from the shared meetings' turns, ~8,800 chunks)
#     against hark-llm-sim on a free loopback port with the model limited to
#     500 RPM and 1,000,000 TPM and latency uniform in 15-40 simulated
#     seconds, for batch sizes 5, 10 and 20 (each on a fresh store, then a
#     rerun that must send nothing), reported in simulated time against the
#     rate-limit bound from the simulator's own log;
#  3. the LLM path on the shared meetings with a per-meeting table of what it
#     found (the simulator's replies are synthetic: the table shows the
#     plumbing, not a model's quality).
# Builds nothing (build first). Run on an idle machine.
#   usage: bench/bench_analyze.sh [BUILD_DIR]
#   env:   TIME_SCALE (30)  BATCHES ("5 10 20")  HARK_SHARED (../shared)
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIM=$BUILD/hark-llm-sim
BENCH=$BUILD/bench_analyze
BENCH_LLM=$BUILD/bench_llm
TIME_SCALE=${TIME_SCALE:-30}
BATCHES=${BATCHES:-"5 10 20"}
RPM=500
TPM=1000000
export HARK_SHARED=${HARK_SHARED:-$ROOT/../shared}
for f in "$SIM" "$BENCH" "$BENCH_LLM"; do
  [ -x "$f" ] || { echo "bench_analyze.sh: $f missing (build first)" >&2; exit 1; }
done
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_TIME_SCALE \
  HARK_LLM_CACHE_TTL_S HARK_LLM_MAX_ATTEMPTS HARK_PROMPTS_DIR
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

echo "# Meeting analysis benchmark — $(date -u +%F) — $(nproc) cores"
echo
echo "## Offline analyzer"
echo
"$BENCH" --shared "$HARK_SHARED" --table --repeat 3
echo

cat >"$tmp/sim.json" <<EOF
{"models": [{"name": "sim-small", "context_window": 131072, "max_output_tokens": 16384,
             "rpm": $RPM, "tpm": $TPM}],
 "window_s": 60,
 "latency": {"dist": "uniform", "min_s": 15, "max_s": 40}}
EOF
rm -f "$tmp/port"
"$SIM" --listen 127.0.0.1:0 --port-file "$tmp/port" --config "$tmp/sim.json" \
  --log "$tmp/sim.jsonl" --time-scale "$TIME_SCALE" --seed 2 \
  --api-key "$HARK_BENCH_SIM_KEY" >"$tmp/sim.out" 2>"$tmp/sim.err" &
sim_pid=$!
for _ in $(seq 200); do
  [ -s "$tmp/port" ] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$tmp/sim.err" >&2; exit 1; }
  sleep 0.05
done
[ -s "$tmp/port" ] || { echo "bench_analyze.sh: simulator did not start" >&2; exit 1; }
port=$(tr -d '[:space:]' <"$tmp/port")
cat >"$tmp/llm.json" <<EOF
{"providers": [{"name": "sim", "base_url": "http://127.0.0.1:$port/v1",
                "api_key_env": "HARK_BENCH_SIM_KEY",
                "models": [{"name": "sim-small", "rpm": $RPM, "tpm": $TPM,
                            "max_concurrency": 256, "price_in": 0.15, "price_out": 0.60,
                            "context_window": 131072, "max_output_tokens": 16384}]}],
 "routes": {"default": ["sim/sim-small"]},
 "llm": {"time_scale": $TIME_SCALE}}
EOF
mkdir -p "$tmp/corpus"
"$BENCH_LLM" --corpus-only --seed 2 --shared "$HARK_SHARED" --write-corpus "$tmp/corpus" | grep '^corpus'
echo "## LLM path (hark-llm-sim: $RPM RPM, $TPM TPM, latency 15-40 s, time scale $TIME_SCALE)"
echo
status=0
for b in $BATCHES; do
  "$BENCH" --dir "$tmp/corpus" --llm "$tmp/llm.json" --sim-log "$tmp/sim.jsonl" --batch "$b" \
    --rpm $RPM --tpm $TPM --runs 2 || status=1
  echo
done
echo "## LLM path on the shared meetings (batch 10): what it finds per meeting"
echo
"$BENCH" --shared "$HARK_SHARED" --llm "$tmp/llm.json" --sim-log "$tmp/sim.jsonl" --batch 10 \
  --rpm $RPM --tpm $TPM --runs 1 --table || status=1
stop_sim
exit $status
