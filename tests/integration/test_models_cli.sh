#!/usr/bin/env bash
# Integration test of `hark models`: synthesise a model and load-check it
# through `list` and `path`; `pull` from a local HTTP server (with Range
# support, and one without) including resume after a truncated .part, a
# sha256 mismatch, a missing file, an unpinned name without --sha256, and an
# offline failure against a closed loopback port.
set -u

HARK_BIN=${HARK_BIN:-}
if [ -z "$HARK_BIN" ] || [ ! -x "$HARK_BIN" ]; then
	echo "SKIP: HARK_BIN not set"; exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
command -v sha256sum >/dev/null || { echo "SKIP: sha256sum missing"; exit 77; }

T=$(mktemp -d /tmp/hark-models-test.XXXXXX)
SERVER_PID=""
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect CODE CMD...: run CMD, compare its exit status
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

export HOME="$T/home"
mkdir -p "$T/models" "$T/www" "$HOME"
export HARK_MODELS="$T/models"

# ------------------------------------------------------------ synth + list --
expect 0 "$HARK_BIN" models list && grep -q "Local models: none" "$T/out" && ok "empty list" || fail "empty list"
grep -q "tiny.en " "$T/out" && grep -q "large-v3-turbo" "$T/out" || fail "catalogue not listed"

expect 0 "$HARK_BIN" models synth --like micro.en --seed 7 -q -o "$T/models/ggml-micro-test.bin" || true
expect 0 "$HARK_BIN" models list && grep -q "ggml-micro-test.bin .*custom (English), f16, state 64, layers 2+2, 80 mels, n_vocab 51864" "$T/out" \
	&& ok "synth f16 listed" || { fail "synth model not listed"; cat "$T/out"; }
expect 0 "$HARK_BIN" models synth --like micro --seed 7 --ftype q5_1 -q -o "$T/models/ggml-micro-q.bin" || true
expect 0 "$HARK_BIN" models list && grep -q "ggml-micro-q.bin .*q5_1, state 64.*n_vocab 51865" "$T/out" \
	&& ok "synth q5_1 listed" || fail "q5_1 synth not listed"
# same seed -> same bytes; different seed -> different bytes
expect 0 "$HARK_BIN" models synth --like micro.en --seed 7 -q -o "$T/again.bin" || true
cmp -s "$T/again.bin" "$T/models/ggml-micro-test.bin" && ok "synth deterministic" || fail "synth not deterministic"
expect 0 "$HARK_BIN" models synth --like micro.en --seed 8 -q -o "$T/other.bin" || true
cmp -s "$T/other.bin" "$T/models/ggml-micro-test.bin" && fail "seed ignored" || ok "seed changes weights"
expect 2 "$HARK_BIN" models synth --like enormous -o "$T/x.bin" && ok "bad --like rejected"
expect 2 "$HARK_BIN" models synth --like tiny --ftype q3 -o "$T/x.bin" && ok "bad --ftype rejected"
[ ! -e "$T/x.bin" ] || fail "output written for a bad synth"
# a corrupt file in the models dir is reported, not fatal
head -c 1000 "$T/models/ggml-micro-test.bin" >"$T/models/ggml-broken.bin"
expect 0 "$HARK_BIN" models list && grep -q "ggml-broken.bin .*INVALID" "$T/out" && ok "corrupt model flagged" || fail "corrupt model not flagged"
rm -f "$T/models/ggml-broken.bin"

expect 0 "$HARK_BIN" models path micro-test && [ "$(cat "$T/out")" = "$T/models/ggml-micro-test.bin" ] \
	&& ok "path by name" || fail "path by name"
expect 14 "$HARK_BIN" models path no-such-model && ok "path: unknown name -> not found"

# ------------------------------------------------------------------- pull --
mv "$T/models/ggml-micro-test.bin" "$T/www/ggml-micro-test.bin"
SRC="$T/www/ggml-micro-test.bin"
SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
SIZE=$(stat -c %s "$SRC")

cat >"$T/server.py" <<'PY'
import http.server, os, re, sys
root, portfile, log, ranges = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "range"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        p = os.path.join(root, os.path.basename(self.path))
        rng = self.headers.get("Range")
        with open(log, "a") as f: f.write("%s %s\n" % (self.path, rng or "-"))
        if not os.path.isfile(p):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        data = open(p, "rb").read()
        m = re.match(r"bytes=(\d+)-$", rng or "") if ranges else None
        if m:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416); self.send_header("Content-Length", "0"); self.end_headers(); return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1])); os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY

start_server() { # mode
	rm -f "$T/port" "$T/log"; touch "$T/log"
	python3 "$T/server.py" "$T/www" "$T/port" "$T/log" "$1" &
	SERVER_PID=$!
	for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
	[ -s "$T/port" ] || { fail "server did not start"; exit 1; }
	export HARK_MODELS_URL="http://127.0.0.1:$(cat "$T/port")"
}
stop_server() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; }

start_server range
DEST="$T/models/ggml-micro-test.bin"

expect 0 "$HARK_BIN" models pull micro-test --sha256 "$SHA" -q && cmp -s "$DEST" "$SRC" && [ ! -e "$DEST.part" ] \
	&& ok "pull" || fail "pull"
[ "$(cat "$T/out")" = "$DEST" ] || fail "pull did not print the path"
rm -f "$DEST"

# resume after a truncated .part: the second request must ask for the rest
head -c 1000000 "$SRC" >"$DEST.part"
: >"$T/log"
expect 0 "$HARK_BIN" models pull micro-test --sha256 "$SHA" -q && cmp -s "$DEST" "$SRC" && [ ! -e "$DEST.part" ] \
	&& grep -q "bytes=1000000-" "$T/log" && ok "resume with Range" || { fail "resume"; cat "$T/log"; }
rm -f "$DEST"

# a complete .part (server answers 416) is verified and installed
cp "$SRC" "$DEST.part"
expect 0 "$HARK_BIN" models pull micro-test --sha256 "$SHA" -q && cmp -s "$DEST" "$SRC" && ok "complete .part (416)" || fail "complete .part"
rm -f "$DEST"

# checksum mismatch: error, no final file, .part deleted
BAD=$(printf '%064d' 0)
expect 28 "$HARK_BIN" models pull micro-test --sha256 "$BAD" -q && [ ! -e "$DEST" ] && [ ! -e "$DEST.part" ] \
	&& grep -q "sha256 mismatch" "$T/err" && ok "sha mismatch rejected" || fail "sha mismatch"

# unpinned name without --sha256 / --no-verify: usage error, nothing fetched
: >"$T/log"
expect 2 "$HARK_BIN" models pull micro-test -q && [ ! -s "$T/log" ] && ok "unpinned needs --sha256" || fail "unpinned"
expect 2 "$HARK_BIN" models pull micro-test --sha256 xyz -q && ok "malformed --sha256 rejected"
expect 0 "$HARK_BIN" models pull micro-test --no-verify -q && cmp -s "$DEST" "$SRC" && ok "--no-verify" || fail "--no-verify"
rm -f "$DEST"

# missing on the server: network error
expect 27 "$HARK_BIN" models pull nothing-here --no-verify -q && grep -q "HTTP 404" "$T/err" && ok "404 -> network error" || fail "404"
rm -f "$T/models/ggml-nothing-here.bin.part"

# pinned catalogue name served with different content: sha mismatch
cp "$SRC" "$T/www/ggml-tiny.en.bin"
expect 28 "$HARK_BIN" models pull tiny.en -q && [ ! -e "$T/models/ggml-tiny.en.bin" ] && ok "pinned digest enforced" || fail "pinned digest"
rm -f "$T/www/ggml-tiny.en.bin" "$T/models/ggml-tiny.en.bin.part"
stop_server

# a server that ignores Range: the partial is discarded and re-fetched whole
start_server norange
head -c 123457 "$SRC" >"$DEST.part"
expect 0 "$HARK_BIN" models pull micro-test --sha256 "$SHA" -q && cmp -s "$DEST" "$SRC" && ok "server without Range" || fail "norange"
rm -f "$DEST"
stop_server

# offline: closed loopback port; the partial file is kept for a later resume
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
export HARK_MODELS_URL="http://127.0.0.1:$PORT"
head -c 5000 "$SRC" >"$DEST.part"
expect 27 "$HARK_BIN" models pull micro-test --sha256 "$SHA" -q && [ -e "$DEST.part" ] && [ "$(stat -c %s "$DEST.part")" = 5000 ] \
	&& [ ! -e "$DEST" ] && grep -qi "partial file kept" "$T/err" && ok "offline -> network error, .part kept" || fail "offline"

# --dir and `path` by explicit file path
start_server range
expect 0 "$HARK_BIN" models pull micro-test --sha256 "$SHA" --dir "$T/other" -q && cmp -s "$T/other/ggml-micro-test.bin" "$SRC" \
	&& ok "pull --dir" || fail "pull --dir"
stop_server
expect 0 "$HARK_BIN" models path "$T/other/ggml-micro-test.bin" && ok "path by file"
expect 15 "$HARK_BIN" models path "$T/other" && ok "path: directory rejected"

echo "size $SIZE bytes, sha $SHA"
if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"; exit 1
fi
echo "all checks passed"
