#!/usr/bin/env bash
# Installs the Debian 12 packages hark needs to build, test and demo.
# Idempotent: only missing packages are installed; uses sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev libswscale-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx
  libjansson-dev libfftw3-dev libopenblas-dev libssl-dev libcurl4-openssl-dev
  libsqlite3-dev libcmocka-dev libwebsockets-dev libgraphviz-dev libcairo2-dev fonts-dejavu-core
  espeak-ng ffmpeg sox time python3
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
