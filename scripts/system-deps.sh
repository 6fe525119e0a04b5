#!/usr/bin/env bash
# Installs the Debian packages MuJoCo needs to render headless (EGL / OSMesa), when they are missing.
# Needed only to record MuJoCo videos (`ddpgx record`) and by the tests that do so.
set -euo pipefail
pkgs=(libegl1 libegl-mesa0 libgl1 libosmesa6)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "ddpgx: headless MuJoCo rendering needs: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    exit 0
  fi
else SUDO=""; fi
echo "installing ${missing[*]} for headless MuJoCo rendering" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
