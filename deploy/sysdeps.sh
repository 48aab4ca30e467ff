#!/usr/bin/env bash
# Install the system packages the stack needs, when they are missing.
# Uses apt-get as root, or through passwordless sudo; otherwise says what to install.
# `--test` adds what only the test suite needs: Debian's Chromium, for the browser tests
# (driven by Playwright through its executable path; no browser is downloaded at run time),
# Node.js with npm, for the contract tests' pinned TypeScript tools (tests/contract/npm/), and
# rabbitmq-server, whose nodes the tests start themselves on free ports (tests/conftest.py).
set -euo pipefail

declare -A pkg_for=([redis-server]=redis-server [ffmpeg]=ffmpeg [ffprobe]=ffmpeg [espeak-ng]=espeak-ng
                    [chromium]=chromium [node]=nodejs [npm]=npm [rabbitmq-server]=rabbitmq-server)
tools=(redis-server ffmpeg ffprobe espeak-ng)
[ "${1-}" = "--test" ] && tools+=(chromium node npm rabbitmq-server)
missing=()
for tool in "${tools[@]}"; do
  # rabbitmq-server lives in /usr/sbin (often not on a user's PATH); the tests run the script it wraps
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/lib/rabbitmq/bin/$tool" ] || missing+=("${pkg_for[$tool]}")
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
# unique package names
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  SUDO=""
fi

if command -v apt-get >/dev/null 2>&1 && [ "${SUDO-unset}" != "" -o "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installing a server package starts its system service (a RabbitMQ on 5672 and epmd on 4369;
  # without systemd the start may even fail the install). Nothing here uses those services: the
  # dev stack and the tests start their own on free ports. A policy-rc.d that says "no" (101)
  # keeps any service from starting during this install, and is removed afterwards.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    "${SUDO[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

cat >&2 <<MSG
New Visions needs these system packages, which are not installed: ${missing[*]}
Install them, for example on Debian/Ubuntu:
    sudo apt-get install ${missing[*]}
then run the command again.
MSG
exit 1
