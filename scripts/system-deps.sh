#!/usr/bin/env bash
# Installs the Debian packages ddpgx's optional parts need, when they are missing:
# - the Mesa libraries MuJoCo needs to render headless (EGL / OSMesa): to record MuJoCo videos (`ddpgx record`) and
#   for the tests that do so;
# - chromium and its driver: for the test that opens the built docs site in a headless browser
#   (tests/test_docs_site.py; it skips without them).
# Never fails: where it cannot install (not root and no sudo, no apt, a package apt does not have), it prints one
# line saying what to install and goes on.
set -uo pipefail

missing_of() {  # the packages among "$@" that dpkg does not list as installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

SUDO=""
can_install=1
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  can_install=0
elif [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else can_install=0; fi
fi
updated=0

install_group() {  # install_group "what they are for" pkg...
  local why="$1"
  shift
  local missing
  mapfile -t missing < <(missing_of "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$can_install" -eq 0 ]; then
    echo "ddpgx: $why needs: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    return 0
  fi
  echo "installing ${missing[*]} for $why" >&2
  if [ "$updated" -eq 0 ]; then
    $SUDO apt-get update -qq || true
    updated=1
  fi
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "ddpgx: could not install ${missing[*]} for $why; install them by hand (apt-get install -y ${missing[*]})" >&2
  fi
  return 0
}

install_group "headless MuJoCo rendering" libegl1 libegl-mesa0 libgl1 libosmesa6
install_group "the docs site's browser test" chromium chromium-driver
exit 0
