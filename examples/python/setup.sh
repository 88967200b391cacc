#!/usr/bin/env bash
# Creates the example's virtualenv (examples/python/.venv, or $RECON_PY_VENV) with
# pinned pytest and jsonschema from PyPI. Idempotent: a venv that already holds
# the pinned versions is left as it is. Fails, loudly, without python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RECON_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
	echo "examples/python: $python not found; the Python example producer needs Python 3.10 or later" >&2
	exit 1
fi
"$python" - <<'PY' || { echo "examples/python: Python 3.10 or later is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
requirements="$here/requirements.txt"
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
	exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
