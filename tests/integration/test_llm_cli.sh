#!/usr/bin/env bash
# `hark llm` against a real hark-llm-sim on loopback: `check` (text and
# --json, API key set / NOT SET, never the key's value), `chat` (reply on
# stdout, one account line on stderr whose tokens and cost match the sim's
# request log, --json fields, the second identical call answered from the
# cache without a request, --no-cache making one, --schema giving JSON that
# matches the schema, --job/--key accounting, a 400 failing cleanly),
# `embed` (one JSON line per text, cached per text), `usage --json` equal to
# the sim's own usage totals, the HARK_LLM_BASE_URL one-liner, and bad
# config files failing with a clear message and a nonzero exit. Skips (77)
# only when the simulator binary is missing.
set -u
bin=${HARK_BIN:-}
sim=${HARK_SIM_BIN:-}
if [ -z "$sim" ] || [ ! -x "$sim" ]; then echo "skip: hark-llm-sim not built (HARK_SIM_BIN)"; exit 77; fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "FAIL: HARK_BIN not set"; exit 1; fi
unset HARK_CONFIG HARK_LLM_BASE_URL HARK_LLM_MODEL HARK_LLM_API_KEY_ENV HARK_LLM_API_KEY \
  HARK_LLM_TIME_SCALE HARK_LLM_CACHE_TTL_S HARK_LLM_MAX_ATTEMPTS LT_CLI_KEY

tmp=$(mktemp -d)
simpid=
cleanup() {
  if [ -n "$simpid" ] && kill -0 "$simpid" 2>/dev/null; then kill -9 "$simpid" 2>/dev/null; wait "$simpid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# py EXPR [args...]: evaluates a Python expression with d = JSON from stdin
py() { python3 -c 'import json,sys; d=json.load(sys.stdin); a=sys.argv[2:]; print(eval(sys.argv[1]))' "$@"; }
cat >"$tmp/check.py" <<'PYEOF'
import json, sys

def schema_ok(d):
    # the --schema file below: {"actions": [{"owner": str, "task": str}, ...]}
    return (isinstance(d, dict) and list(d) == ["actions"] and len(d["actions"]) >= 1
            and all(isinstance(x, dict) and sorted(x) == ["owner", "task"]
                    and all(isinstance(v, str) for v in x.values()) for x in d["actions"]))

def sim_cost(stats, prices):
    # prices: {model: (usd per 1M in, usd per 1M out)}
    total = 0.0
    for model, (pin, pout) in prices.items():
        u = stats["models"].get(model, {}).get("usage", {})
        total += (u.get("prompt_tokens", 0) * pin + u.get("completion_tokens", 0) * pout) / 1e6
    return "%.6f" % total

def last_embed_prompt_tokens(log_path, n_inputs):
    entries = [json.loads(l) for l in open(log_path) if l.strip()]
    return [e for e in entries if "embeddings" in e["path"] and e["n_inputs"] == n_inputs][-1]["prompt_tokens"]

what = sys.argv[1]
if what == "schema":
    print(schema_ok(json.load(sys.stdin)))
elif what == "cost":
    print(sim_cost(json.load(sys.stdin), {"sim-small": (0.5, 1.5), "sim-embed": (0.02, 0)}))
elif what == "embed_tokens":
    print(last_embed_prompt_tokens(sys.argv[2], int(sys.argv[3])))
PYEOF
loglines() { if [ -f "$tmp/sim.jsonl" ]; then wc -l <"$tmp/sim.jsonl" | tr -d ' '; else echo 0; fi; }
lastlog() { tail -n 1 "$tmp/sim.jsonl"; }
stats() { curl -s --noproxy '*' "$base/_sim/stats"; }

scale=20
"$sim" --listen 127.0.0.1:0 --port-file "$tmp/port" --log "$tmp/sim.jsonl" --time-scale $scale \
  >"$tmp/sim.out" 2>&1 &
simpid=$!
port=
for _ in $(seq 200); do
  if [ -s "$tmp/port" ] && grep -q . "$tmp/port"; then port=$(head -n 1 "$tmp/port"); break; fi
  kill -0 "$simpid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: hark-llm-sim did not start"; cat "$tmp/sim.out"; exit 1; }
base=http://127.0.0.1:$port

cfg=$tmp/hark.json
cat >"$cfg" <<EOF
{"providers":[{"name":"p","base_url":"$base/v1","api_key_env":"LT_CLI_KEY",
  "models":[{"name":"sim-small","context_window":16384,"price_in":0.5,"price_out":1.5},
            {"name":"sim-embed","embedding":true,"price_in":0.02}]}],
 "routes":{"default":["p/sim-small"],"embed":["p/sim-embed"]},
 "llm":{"time_scale":$scale},
 "server_setting_of_someone_else":{"ignored":true}}
EOF
data=$tmp/data
llm() { "$bin" llm "$@"; }

# ---- check -------------------------------------------------------------------
out=$(llm check --config "$cfg" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || bad "check exited $rc: $(cat "$tmp/err")"
printf '%s\n' "$out" | grep -q "LT_CLI_KEY (NOT SET)" || bad "check without the key does not say NOT SET: $out"
printf '%s\n' "$out" | grep -q "p/sim-small" || bad "check does not list p/sim-small: $out"
printf '%s\n' "$out" | grep -q "p/sim-embed" || bad "check does not list p/sim-embed: $out"
printf '%s\n' "$out" | grep -Eq "route +default +p/sim-small" || bad "check does not show the default route: $out"
secret="sk-lt-$(date +%s%N)"
out=$(LT_CLI_KEY=$secret llm check --config "$cfg" 2>&1); rc=$?
[ $rc -eq 0 ] || bad "check with the key exited $rc"
printf '%s\n' "$out" | grep -q "LT_CLI_KEY (set)" || bad "check with the key does not say set: $out"
printf '%s\n' "$out" | grep -qF "$secret" && bad "check printed the key's value"
out=$(LT_CLI_KEY=$secret llm check --config "$cfg" --json 2>&1); rc=$?
[ $rc -eq 0 ] || bad "check --json exited $rc"
printf '%s\n' "$out" | grep -qF "$secret" && bad "check --json printed the key's value"
[ "$(printf '%s' "$out" | py 'd["providers"][0]["api_key_set"]')" = True ] || bad "check --json api_key_set not true: $out"
[ "$(printf '%s' "$out" | py 'sorted(m["key"] for m in d["providers"][0]["models"])')" = "['p/sim-embed', 'p/sim-small']" ] ||
  bad "check --json models: $out"
[ "$(printf '%s' "$out" | py 'd["routes"]["default"]')" = "['p/sim-small']" ] || bad "check --json routes: $out"
[ "$(printf '%s' "$out" | py 'd["time_scale"]')" = "20.0" ] || bad "check --json time_scale: $out"
out=$(llm check --config "$cfg" --json 2>&1)
[ "$(printf '%s' "$out" | py 'd["providers"][0]["api_key_set"]')" = False ] || bad "check --json api_key_set not false without the key"

# ---- chat --------------------------------------------------------------------
prompt="Please confirm the venue booking for Thursday. The rest is detail."
n0=$(loglines)
reply=$(LT_CLI_KEY=$secret llm chat --config "$cfg" --data "$data" "$prompt" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || bad "chat exited $rc: $(cat "$tmp/err")"
[ -n "$reply" ] || bad "chat printed no reply"
[ "$(loglines)" -eq $((n0 + 1)) ] || bad "chat did not make exactly one request"
acct=$(cat "$tmp/err")
re='^hark llm: p/sim-small  tokens ([0-9]+) in / ([0-9]+) out  \$([0-9.]+)  [0-9.]+s$'
if [[ $acct =~ $re ]]; then
  tin=${BASH_REMATCH[1]}; tout=${BASH_REMATCH[2]}; cost=${BASH_REMATCH[3]}
  [ "$tin" = "$(lastlog | py 'd["prompt_tokens"]')" ] || bad "account line tokens in $tin != sim's $(lastlog)"
  [ "$tout" = "$(lastlog | py 'd["completion_tokens"]')" ] || bad "account line tokens out $tout != sim's $(lastlog)"
  want=$(python3 -c "print('%.6f' % (($tin*0.5 + $tout*1.5)/1e6))")
  [ "$cost" = "$want" ] || bad "account line cost $cost != $want"
else
  bad "account line on stderr not as documented: '$acct'"
fi
printf '%s' "$reply" | grep -q "hark llm:" && bad "the account line went to stdout"

# the same prompt again: cached, no request
reply2=$(llm chat --config "$cfg" --data "$data" "$prompt" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || bad "second chat exited $rc"
[ "$reply2" = "$reply" ] || bad "cached reply differs: '$reply2' vs '$reply'"
grep -q "(cached)" "$tmp/err" || bad "second chat not marked cached: $(cat "$tmp/err")"
[ "$(loglines)" -eq $((n0 + 1)) ] || bad "a cached chat made a request"
out=$(llm chat --config "$cfg" --data "$data" --json "$prompt" 2>/dev/null)
[ "$(printf '%s' "$out" | py 'd["cached"], d["tokens_in"], d["tokens_out"], d["cost_usd"], d["attempts"]')" = "(True, 0, 0, 0.0, 0)" ] ||
  bad "chat --json of a cached reply: $out"
[ "$(printf '%s' "$out" | py 'd["content"] == a[0]' "$reply")" = True ] || bad "chat --json content differs from the text reply"
# --no-cache: a request again, same deterministic reply
reply3=$(llm chat --config "$cfg" --data "$data" --no-cache "$prompt" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || bad "--no-cache chat exited $rc"
[ "$(loglines)" -eq $((n0 + 2)) ] || bad "--no-cache made no request"
grep -q "(cached)" "$tmp/err" && bad "--no-cache reply marked cached"
[ "$reply3" = "$reply" ] || bad "--no-cache reply differs"

# --json of a fresh request, accounted to a job and a key
out=$(llm chat --config "$cfg" --data "$data" --json --job job-cli --key key-cli \
  --system "You answer briefly." "Who owns the hiring plan? Jonas does." 2>/dev/null); rc=$?
[ $rc -eq 0 ] || bad "chat --json exited $rc: $out"
for f in content model tokens_in tokens_out cost_usd cached attempts repairs latency_s; do
  [ "$(printf '%s' "$out" | py 'a[0] in d' "$f")" = True ] || bad "chat --json lacks $f: $out"
done
[ "$(printf '%s' "$out" | py 'd["cached"], d["attempts"], d["repairs"], d["model"]')" = "(False, 1, 0, 'p/sim-small')" ] ||
  bad "chat --json values: $out"
[ "$(printf '%s' "$out" | py 'd["tokens_in"]')" = "$(lastlog | py 'd["prompt_tokens"]')" ] || bad "--json tokens_in differs from the sim's"
[ "$(printf '%s' "$out" | py 'd["tokens_out"]')" = "$(lastlog | py 'd["completion_tokens"]')" ] || bad "--json tokens_out differs from the sim's"
job_in=$(printf '%s' "$out" | py 'd["tokens_in"]')
job_out=$(printf '%s' "$out" | py 'd["tokens_out"]')

# --schema: the reply is JSON matching it
cat >"$tmp/schema.json" <<'EOF'
{"type":"object","properties":{"actions":{"type":"array","minItems":1,"items":{"type":"object",
 "properties":{"owner":{"type":"string"},"task":{"type":"string"}},"required":["owner","task"],
 "additionalProperties":false}}},"required":["actions"],"additionalProperties":false}
EOF
out=$(llm chat --config "$cfg" --data "$data" --schema "$tmp/schema.json" \
  "[chunk c1] Maria Lopez will send the budget. [chunk c2] Tom Baker books the room." 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] || bad "chat --schema exited $rc: $(cat "$tmp/err")"
ok=$(printf '%s' "$out" | python3 "$tmp/check.py" schema 2>&1)
[ "$ok" = True ] || bad "chat --schema reply does not match the schema: $out ($ok)"
grep -q "^hark llm: p/sim-small" "$tmp/err" || bad "chat --schema account line: $(cat "$tmp/err")"

# a 400 fails cleanly, not retried
n1=$(loglines)
out=$(llm chat --config "$cfg" --data "$data" --json "Broken on purpose [[sim:fail status=400 times=1]]" 2>"$tmp/err"); rc=$?
[ $rc -ne 0 ] || bad "a 400 exited 0"
[ -n "$(printf '%s' "$out" | py 'd["error"]["code"]' 2>/dev/null)" ] || bad "no error.code in --json failure: $out"
[ "$(loglines)" -eq $((n1 + 1)) ] || bad "a 400 was retried"
llm chat --config "$cfg" --data "$data" "Broken again [[sim:fail status=400 times=1]]" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] || bad "a 400 (text mode) exited 0"
[ -s "$tmp/err" ] || bad "a 400 (text mode) printed no message"

# ---- embed -------------------------------------------------------------------
llm embed --config "$cfg" --data "$data" --job job-cli "first text to embed" "second text" >"$tmp/emb" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] || bad "embed exited $rc: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/emb" | tr -d ' ')" = 2 ] || bad "embed printed $(wc -l <"$tmp/emb") lines"
i=0
while read -r line; do
  [ "$(printf '%s' "$line" | py 'd["index"] == int(a[0]) and d["dim"] == len(d["embedding"]) > 0' "$i")" = True ] ||
    bad "embed line $i: ${line:0:200}"
  i=$((i + 1))
done <"$tmp/emb"
grep -q "2 inputs, 0 cached, 1 requests" "$tmp/err" || bad "embed account line: $(cat "$tmp/err")"
[ "$(lastlog | py 'd["n_inputs"]')" = 2 ] || bad "embed request did not carry 2 inputs"
first_vec=$(head -n 1 "$tmp/emb" | py 'd["embedding"]')
llm embed --config "$cfg" --data "$data" "a third text" "first text to embed" >"$tmp/emb2" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] || bad "second embed exited $rc"
grep -q "2 inputs, 1 cached, 1 requests" "$tmp/err" || bad "second embed account line: $(cat "$tmp/err")"
[ "$(lastlog | py 'd["n_inputs"]')" = 1 ] || bad "second embed sent more than the new text"
[ "$(sed -n 2p "$tmp/emb2" | py 'd["embedding"]')" = "$first_vec" ] || bad "cached embedding differs"

# ---- usage -------------------------------------------------------------------
st=$(stats)
out=$(llm usage --data "$data" --json 2>&1); rc=$?
[ $rc -eq 0 ] || bad "usage exited $rc: $out"
[ "$(printf '%s' "$out" | py 'd["tokens_in"]')" = "$(printf '%s' "$st" | py 'd["usage"]["prompt_tokens"]')" ] ||
  bad "usage tokens_in $out != sim $st"
[ "$(printf '%s' "$out" | py 'd["tokens_out"]')" = "$(printf '%s' "$st" | py 'd["usage"]["completion_tokens"]')" ] ||
  bad "usage tokens_out $out != sim $st"
[ "$(printf '%s' "$out" | py 'd["requests"]')" = "$(printf '%s' "$st" | py 'd["requests"]')" ] ||
  bad "usage requests $out != sim requests $st"
# docs/LLM.md: every cache hit is accounted: 2 chat hits + the cached embedding text
[ "$(printf '%s' "$out" | py 'd["cached"]')" = 3 ] || bad "usage cached calls: $out (expected 3: 2 chat hits, 1 embedding hit)"
want=$(printf '%s' "$st" | python3 "$tmp/check.py" cost)
[ "$(printf '%s' "$out" | py '"%.6f" % d["cost_usd"]')" = "$want" ] || bad "usage cost $out != $want"
out=$(llm usage --data "$data" --job job-cli --json 2>&1)
emb_in=$(python3 "$tmp/check.py" embed_tokens "$tmp/sim.jsonl" 2)
[ "$(printf '%s' "$out" | py 'd["tokens_in"], d["tokens_out"]')" = "($((job_in + emb_in)), $job_out)" ] ||
  bad "usage --job job-cli: $out (expected in $job_in+$emb_in, out $job_out)"
out=$(llm usage --data "$data" --key key-cli --json 2>&1)
[ "$(printf '%s' "$out" | py 'd["tokens_in"], d["tokens_out"]')" = "($job_in, $job_out)" ] || bad "usage --key key-cli: $out"
out=$(llm usage --data "$data" 2>&1); rc=$?
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q "tokens in" || bad "usage text: $out"
llm usage --data "$tmp/no-such-dir" --json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] || bad "usage of a missing data directory exited 0"

# ---- the HARK_LLM_BASE_URL one-liner ----------------------------------------
out=$(HARK_LLM_BASE_URL=$base/v1 HARK_LLM_MODEL=sim-small HARK_LLM_TIME_SCALE=$scale \
  "$bin" llm chat --data "$tmp/data-env" "Hello from the environment." 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] && [ -n "$out" ] || bad "HARK_LLM_BASE_URL chat exited $rc: $(cat "$tmp/err")"
grep -q "^hark llm: env/sim-small" "$tmp/err" || bad "HARK_LLM_BASE_URL account line: $(cat "$tmp/err")"

# ---- bad configuration -------------------------------------------------------
expect_config_error() { # file, what the message must name
  local f=$1 want=$2 rc
  llm check --config "$f" >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ $rc -ne 0 ] || bad "check of a bad config ($want) exited 0"
  grep -qF -- "$want" "$tmp/err" || bad "bad config message does not name '$want': $(cat "$tmp/err")"
  llm chat --config "$f" --data "$data" "hello" >"$tmp/out" 2>"$tmp/err"; rc=$?
  [ $rc -ne 0 ] || bad "chat with a bad config ($want) exited 0"
  [ -s "$tmp/out" ] && bad "chat with a bad config printed a reply"
}
printf '{"providers":[{"name":"p","base_url":"%s/v1","modelz":[]}]}' "$base" >"$tmp/bad1.json"
expect_config_error "$tmp/bad1.json" modelz
printf '{"providers":[{"name":"p","base_url":"ftp://example","models":[{"name":"m"}]}]}' >"$tmp/bad2.json"
expect_config_error "$tmp/bad2.json" base_url
printf '{"providers":[{"name":"p","base_url":"%s/v1","models":[{"name":"m","rpm":-5}]}]}' "$base" >"$tmp/bad3.json"
expect_config_error "$tmp/bad3.json" rpm
printf '{"providers":[{"name":"p","base_url":"%s/v1","models":[{"name":"m"}]}],"routes":{"default":["p/nope"]}}' "$base" >"$tmp/bad4.json"
expect_config_error "$tmp/bad4.json" "p/nope"
printf '{"providers": [' >"$tmp/bad5.json"
expect_config_error "$tmp/bad5.json" "bad5.json"
expect_config_error "$tmp/does-not-exist.json" "does-not-exist.json"
# no provider at all: chat refuses with a clear message
printf '{}' >"$tmp/empty.json"
llm chat --config "$tmp/empty.json" --data "$data" "hello" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -ne 0 ] || bad "chat without providers exited 0"
grep -qi "provider" "$tmp/err" || bad "chat without providers: $(cat "$tmp/err")"

kill -TERM "$simpid"; wait "$simpid"; rc=$?
simpid=
[ $rc -eq 0 ] || bad "hark-llm-sim exited $rc on SIGTERM"
grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:" "$tmp/sim.out" && bad "sanitizer report from the sim: $(cat "$tmp/sim.out")"
if [ $fail -ne 0 ]; then exit 1; fi
echo "ok"
