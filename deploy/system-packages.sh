#!/usr/bin/env bash
# Install the Debian packages listed in the given files (default: deploy/system-packages.txt)
# that are missing. Needs root (or sudo); without it, prints what to install and continues.
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@"); [ ${#files[@]} -gt 0 ] || files=(deploy/system-packages.txt)
mapfile -t wanted < <(grep -hv '^\s*#' "${files[@]}" | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "system-packages: not a Debian-like system; install the equivalents of: ${missing[*]}" >&2
  exit 0
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "system-packages: installing ${missing[*]}" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null; then
  echo "system-packages: could not install (${missing[*]}); run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
