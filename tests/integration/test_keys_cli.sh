#!/usr/bin/env bash
# Integration test of `hark keys`: create keys (default and explicit limits),
# list them as a table and as JSON (never the hash or the token), check that
# the store keeps only the token's sha256 (the token itself appears nowhere
# in the database files), revoke by prefix and by id, print a stable webhook
# secret, and the usage and error exit codes (2 usage, 14 not found, 20
# corrupt store).
set -u

HARK_BIN=${HARK_BIN:-}
if [ -z "$HARK_BIN" ] || [ ! -x "$HARK_BIN" ]; then
	echo "SKIP: HARK_BIN not set"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
HARK_BIN=$(realpath "$HARK_BIN")
if "$HARK_BIN" keys --help 2>&1 | grep -q "unknown command"; then
	echo "SKIP: this hark binary does not dispatch 'keys' yet"; exit 77
fi

T=$(mktemp -d /tmp/hark-keys-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
D="$T/data"

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect CODE CMD...: run CMD (stdout in $T/out, stderr in $T/err), check its exit status
expect() {
	local want=$1; shift
	"$@" >"$T/out" 2>"$T/err"
	local got=$?
	if [ "$got" != "$want" ]; then
		fail "exit $got (want $want): $*"; sed 's/^/  | /' "$T/err" "$T/out" | head -20
		return 1
	fi
	return 0
}

# json FILE EXPR: evaluate a Python expression over the parsed JSON in FILE (as `j`)
json() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# ---- create ------------------------------------------------------------------
if expect 0 "$HARK_BIN" keys create --data "$D" --name alice; then
	cp "$T/out" "$T/alice.json"
	[ "$(wc -l <"$T/out")" = 1 ] || fail "create prints one line"
	A_ID=$(json "$T/alice.json" 'j["id"]')
	A_TOKEN=$(json "$T/alice.json" 'j["token"]')
	A_PREFIX=$(json "$T/alice.json" 'j["prefix"]')
	[[ "$A_ID" =~ ^key_[0-9a-f]{16}$ ]] || fail "key id format: $A_ID"
	[[ "$A_TOKEN" =~ ^hark_[0-9a-f]{40}$ ]] || fail "token format: $A_TOKEN"
	[ "$A_PREFIX" = "${A_TOKEN:0:12}" ] || fail "prefix is the token's first 12 chars"
	[ "$(json "$T/alice.json" 'j["name"]')" = alice ] || fail "name"
	[ "$(json "$T/alice.json" '(j["rps"], j["burst"], j["quota_seconds"], j["max_concurrent"])')" = "(10.0, 20.0, 0.0, 4)" ] \
		|| fail "default limits: $(cat "$T/alice.json")"
	[ -d "$D" ] && [ "$(stat -c %a "$D")" = 700 ] || fail "data dir created with mode 0700"
	ok "create alice"
else
	echo "cannot continue without a key"; exit 1
fi

if expect 0 "$HARK_BIN" keys create --data "$D" --name "bob the builder" --rps 2.5 --burst 7 \
	--quota-seconds 3600 --max-concurrent 2; then
	cp "$T/out" "$T/bob.json"
	B_ID=$(json "$T/bob.json" 'j["id"]')
	B_TOKEN=$(json "$T/bob.json" 'j["token"]')
	[ "$(json "$T/bob.json" '(j["rps"], j["burst"], j["quota_seconds"], j["max_concurrent"])')" = "(2.5, 7.0, 3600.0, 2)" ] \
		|| fail "explicit limits: $(cat "$T/bob.json")"
	[ "$B_TOKEN" != "$A_TOKEN" ] || fail "tokens differ"
	ok "create bob with limits"
fi

# ---- only the hash is stored -------------------------------------------------
for tok in "$A_TOKEN" "$B_TOKEN"; do
	n=$(cat "$D"/hark.db* | grep -c -a -F "$tok")
	[ "$n" = 0 ] || fail "token found in the database files ($n)"
done
python3 - "$D/hark.db" "$A_TOKEN" "$A_ID" <<'EOF' || fail "hash check"
import hashlib, sqlite3, sys
db, token, kid = sys.argv[1:4]
con = sqlite3.connect(db)
rows = con.execute("SELECT id, hash, prefix FROM keys").fetchall()
want = hashlib.sha256(token.encode()).hexdigest()
assert (kid, want, token[:12]) in rows, rows
for r in rows:
    assert token not in r
EOF
ok "the store keeps sha256(token), never the token"

# ---- list --------------------------------------------------------------------
if expect 0 "$HARK_BIN" keys list --data "$D" --json; then
	cp "$T/out" "$T/list.json"
	[ "$(json "$T/list.json" 'len(j)')" = 2 ] || fail "two keys listed"
	[ "$(json "$T/list.json" 'sorted(k["id"] for k in j) == sorted(["'"$A_ID"'","'"$B_ID"'"])')" = True ] \
		|| fail "listed ids"
	[ "$(json "$T/list.json" 'any("hash" in k or "token" in k for k in j)')" = False ] || fail "no hash/token in list"
	grep -q -F "$A_TOKEN" "$T/out" && fail "token in list output"
	[ "$(json "$T/list.json" '[k for k in j if k["id"]=="'"$B_ID"'"][0]["max_concurrent"]')" = 2 ] || fail "bob's cap listed"
	[ "$(json "$T/list.json" 'all(k["revoked"] is False and k["revoked_at"] is None for k in j)')" = True ] || fail "active"
	[ "$(json "$T/list.json" 'all(k["created_at"].endswith("Z") for k in j)')" = True ] || fail "RFC 3339 times"
	ok "list --json"
fi
if expect 0 "$HARK_BIN" keys list --data "$D"; then
	grep -q "$A_ID" "$T/out" && grep -q "$B_ID" "$T/out" && grep -q "bob the builder" "$T/out" \
		|| fail "table lists both keys"
	[ "$(grep -c active "$T/out")" = 2 ] || fail "two active keys in the table"
	ok "list table"
fi

# ---- revoke ------------------------------------------------------------------
A_PREFIX=$(json "$T/alice.json" 'j["prefix"]')
expect 0 "$HARK_BIN" keys revoke --data "$D" "$A_PREFIX" && ok "revoke by prefix"
expect 0 "$HARK_BIN" keys revoke --data "$D" "$B_ID" && ok "revoke by id"
if expect 0 "$HARK_BIN" keys list --data "$D" --json; then
	[ "$(json "$T/out" 'all(k["revoked"] is True and k["revoked_at"] for k in j)')" = True ] \
		|| fail "both revoked: $(cat "$T/out")"
fi
expect 14 "$HARK_BIN" keys revoke --data "$D" key_0000000000000000 && ok "revoke unknown -> 14"

# ---- webhook secret ----------------------------------------------------------
if expect 0 "$HARK_BIN" keys webhook-secret --data "$D"; then
	S1=$(cat "$T/out")
	[[ "$S1" =~ ^[0-9a-f]{64}$ ]] || fail "secret format: $S1"
	expect 0 "$HARK_BIN" keys webhook-secret --data "$D"
	[ "$(cat "$T/out")" = "$S1" ] || fail "secret is stable"
	ok "webhook-secret"
fi

# ---- usage and store errors ----------------------------------------------------
expect 2 "$HARK_BIN" keys && ok "no subcommand -> 2"
expect 2 "$HARK_BIN" keys frobnicate --data "$D" && ok "unknown subcommand -> 2"
expect 2 "$HARK_BIN" keys create --data "$D" && ok "create without --name -> 2"
expect 2 "$HARK_BIN" keys create --data "$D" --name x --rps -1 && ok "negative rps -> 2"
expect 2 "$HARK_BIN" keys create --data "$D" --name x --max-concurrent 1.5 && ok "fractional cap -> 2"
expect 2 "$HARK_BIN" keys list --data "$D" --rps 3 && ok "create option on list -> 2"
expect 2 "$HARK_BIN" keys revoke --data "$D" && ok "revoke without id -> 2"
expect 0 "$HARK_BIN" keys --help && grep -q "webhook-secret" "$T/out" && ok "--help"
expect 14 "$HARK_BIN" keys list --data "$T/nowhere" && ok "list without a store -> 14"
[ -e "$T/nowhere" ] && fail "list must not create a data directory"

mkdir -p "$T/bad"
head -c 8192 /dev/urandom >"$T/bad/hark.db"
if expect 20 "$HARK_BIN" keys list --data "$T/bad"; then
	grep -q "not a hark database" "$T/err" || fail "corrupt message: $(cat "$T/err")"
	ok "corrupt hark.db -> 20"
fi

# default --data is ./hark-data
(cd "$T" && "$HARK_BIN" keys create --name here >/dev/null 2>&1) && [ -f "$T/hark-data/hark.db" ] \
	&& ok "default data dir" || fail "default --data ./hark-data"

if [ "$fails" -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "all keys CLI checks passed"
