#!/usr/bin/env bash
# deploy/local/chromium.sh: the headless browser recon's console end-to-end test drives:
# Debian's chromium package (nothing downloaded from anywhere else).
#
#   chromium.sh install   install chromium with apt if it is missing (idempotent; needs root)
#   chromium.sh path      print the browser's path (exit 1 when missing)
#   chromium.sh env       print RECON_CHROMIUM=<path> for the test (nothing when missing)
set -euo pipefail

find_browser() {
	local c
	for c in "${RECON_CHROMIUM:-}" chromium chromium-browser; do
		[ -n "$c" ] || continue
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

case "${1:-}" in
install)
	if p="$(find_browser)"; then
		echo "chromium.sh: $p already installed" >&2
		exit 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "chromium.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium >/dev/null
	p="$(find_browser)" || { echo "chromium.sh: apt installed chromium but no chromium binary is on PATH" >&2; exit 1; }
	echo "chromium.sh: installed $p ($("$p" --version 2>/dev/null || true))" >&2
	;;
path)
	find_browser
	;;
env)
	if p="$(find_browser)"; then
		echo "RECON_CHROMIUM=$p"
	fi
	;;
*)
	sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
