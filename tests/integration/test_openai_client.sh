#!/usr/bin/env bash
# The official OpenAI Node.js client against `hark serve`: with baseURL
# http://127.0.0.1:PORT/v1 and a hark API key as apiKey,
# audio.transcriptions.create() on the JFK clip must work for response_format
# json ({text}), verbose_json (segments, words, duration), text, srt and vtt,
# and the client must see hark's errors as API errors (401 for a wrong key,
# 415 for a text file). The `openai` npm package is installed once into
# $HARK_BUILD_DIR/npm-openai. Skips (77) without node/npm, without network
# access to the npm registry, or while `hark serve` is not available.
set -u
bin=${HARK_BIN:-}
shared=${HARK_SHARED:-}
clip=$shared/audio/jfk/jfk.wav
if [ -z "$bin" ] || [ ! -x "$bin" ]; then echo "skip: HARK_BIN not set"; exit 77; fi
if [ ! -f "$clip" ]; then echo "skip: $clip missing"; exit 77; fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then echo "skip: node/npm missing"; exit 77; fi
if ! "$bin" serve --help >/dev/null 2>&1; then echo "skip: hark serve not available"; exit 77; fi

prefix=${HARK_BUILD_DIR:-/tmp}/npm-openai
if [ ! -f "$prefix/node_modules/openai/package.json" ]; then
  mkdir -p "$prefix"
  if ! timeout 300 npm install --prefix "$prefix" openai --no-audit --no-fund --loglevel=error \
      >"$prefix/npm-install.log" 2>&1; then
    echo "skip: npm could not install the openai package:"; tail -n 5 "$prefix/npm-install.log"
    exit 77
  fi
fi
echo "openai package $(node -p "require('$prefix/node_modules/openai/package.json').version")"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

data=$tmp/data
key=$("$bin" keys create --data "$data" --name openai-client --rps 1000 --burst 1000) || { echo "FAIL: keys create"; exit 1; }
token=$(printf '%s' "$key" | python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[t.find("{"):])["token"])' 2>/dev/null)
[ -n "$token" ] || { echo "FAIL: no token in: $key"; exit 1; }
printf '{"min_free_disk_mb":1,"key_defaults":{"rps":1000,"burst":1000}}\n' >"$tmp/config.json"
"$bin" serve --listen 127.0.0.1:0 --data "$data" --port-file "$tmp/port" --config "$tmp/config.json" \
  --workers 1 --threads 1 --engine pocketsphinx 2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 300); do
  if [ -s "$tmp/port" ]; then
    port=$(cat "$tmp/port")
    curl -sf --noproxy "*" "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ] || ! curl -sf --noproxy "*" "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
  echo "FAIL: server did not start"; tail -n 30 "$tmp/server.log"; exit 1
fi

script=$prefix/check_hark.cjs
cat >"$script" <<'EOF'
// Runs the official OpenAI client against hark serve; exits non-zero on the first failure.
const fs = require('fs');
const OpenAI = require('openai');
const [port, token, clip, textFile] = process.argv.slice(2);
const baseURL = `http://127.0.0.1:${port}/v1`;
const client = new OpenAI({ apiKey: token, baseURL, maxRetries: 0, timeout: 120000 });
const words = (s) => (s || '').toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').trim().split(/\s+/).filter(Boolean);
function check(cond, what) {
  if (!cond) { console.error('FAIL: ' + what); process.exit(1); }
  console.log('ok: ' + what);
}
async function create(format, extra = {}) {
  return client.audio.transcriptions.create({
    file: fs.createReadStream(clip), model: 'whisper-1', response_format: format, ...extra,
  });
}
(async () => {
  const j = await create('json');
  check(typeof j.text === 'string' && j.text.length > 10, `json: text "${j.text}"`);
  const w = words(j.text);
  check(w.includes('country') && w.includes('americans'), 'json: the JFK words are there');

  const v = await create('verbose_json', { timestamp_granularities: ['word', 'segment'], language: 'en' });
  check(words(v.text).join(' ') === w.join(' '), 'verbose_json: same text as json');
  check(Array.isArray(v.segments) && v.segments.length > 0, `verbose_json: ${v.segments && v.segments.length} segments`);
  check(v.segments.every((s) => typeof s.start === 'number' && s.end >= s.start && s.end <= 11.5 && typeof s.text === 'string'),
    'verbose_json: segments have start <= end within the clip');
  check(typeof v.duration === 'number' && v.duration > 10.5 && v.duration < 11.5, `verbose_json: duration ${v.duration}`);
  check(Array.isArray(v.words) && v.words.length >= w.length / 2 &&
    v.words.every((x) => typeof x.word === 'string' && x.end >= x.start), `verbose_json: ${v.words && v.words.length} words`);

  const t = await create('text');
  check(typeof t === 'string' && words(t).join(' ') === w.join(' '), 'text: a plain string with the same words');
  const srt = await create('srt');
  check(typeof srt === 'string' && /^1\r?\n00:00:\d\d,\d\d\d --> 00:00:\d\d,\d\d\d\r?\n/.test(srt), 'srt: first cue');
  const vtt = await create('vtt');
  check(typeof vtt === 'string' && vtt.startsWith('WEBVTT'), 'vtt: WEBVTT header');

  const bad = new OpenAI({ apiKey: 'hark_wrong_token', baseURL, maxRetries: 0 });
  try {
    await bad.audio.transcriptions.create({ file: fs.createReadStream(clip), model: 'whisper-1' });
    check(false, 'wrong key is refused');
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === 401, `wrong key: ${e.status} ${e.constructor.name}`);
  }
  try {
    await client.audio.transcriptions.create({ file: fs.createReadStream(textFile), model: 'whisper-1' });
    check(false, 'text file is refused');
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === 415, `text file: ${e.status} ${e.message}`);
  }
})().catch((e) => { console.error('FAIL: ' + (e && e.stack || e)); process.exit(1); });
EOF
printf 'This is a text file, not audio.\n' >"$tmp/notes.wav"
start=$(date +%s)
timeout 180 node "$script" "$port" "$token" "$clip" "$tmp/notes.wav"
rc=$?
echo "node client finished in $(( $(date +%s) - start )) s (rc $rc)"
if [ $rc -ne 0 ]; then echo "---- server log ----"; tail -n 40 "$tmp/server.log"; fi

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "FAIL: server ignored SIGTERM"; rc=1; else
  wait "$pid"; st=$?; [ $st -eq 0 ] || { echo "FAIL: server exit $st after SIGTERM"; rc=1; }
fi
pid=
exit $rc
