#!/usr/bin/env bash
# deploy/local/xmllint.sh: the XML Schema validator collect's TestIntegrationSchemaValid runs
# the built pain.008/pain.001 files through: Debian's libxml2-utils package.
#
#   xmllint.sh install   install libxml2-utils with apt if xmllint is missing (idempotent; needs root)
#   xmllint.sh path      print xmllint's path (exit 1 when missing)
set -euo pipefail

case "${1:-}" in
install)
	if p="$(command -v xmllint)"; then
		echo "xmllint.sh: $p already installed" >&2
		exit 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "xmllint.sh: xmllint is missing and installing it needs root (apt-get install libxml2-utils)" >&2
		exit 1
	fi
	command -v apt-get >/dev/null 2>&1 || { echo "xmllint.sh: installing needs apt-get (Debian/Ubuntu); install xmllint yourself" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-cache show libxml2-utils >/dev/null 2>&1; then
		apt-get update -qq
	fi
	apt-get install -y -qq --no-install-recommends libxml2-utils >/dev/null
	p="$(command -v xmllint)" || { echo "xmllint.sh: apt installed libxml2-utils but xmllint is not on PATH" >&2; exit 1; }
	echo "xmllint.sh: installed $p" >&2
	;;
path)
	command -v xmllint
	;;
*)
	sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
