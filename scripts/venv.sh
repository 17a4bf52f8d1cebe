#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install the given requirements file (idempotent, fast when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
requirements="${1:-requirements.txt}"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
  python="$(scripts/find-python.sh)"
  echo "Creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$requirements")"
if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/pip install --disable-pip-version-check -q -r "$requirements"
  touch "$stamp"
fi
