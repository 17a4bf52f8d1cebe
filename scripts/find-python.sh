#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter (Django 6.1 needs it), or fail clearly.
# pyenv shims named python3.12/python3.13 exist even when that version is not selected,
# so each candidate is run with a version check, never trusted by `command -v` alone.
set -u
candidates=("${PYTHON:-}" python3.14 python3.13 python3.12 python3)
for dir in "$HOME"/.pyenv/versions/3.1[2-9]* /usr/local/bin /usr/bin; do
  [ -x "$dir/bin/python3" ] && candidates+=("$dir/bin/python3")
  for minor in 14 13 12; do [ -x "$dir/python3.$minor" ] && candidates+=("$dir/python3.$minor"); done
done
for candidate in "${candidates[@]}"; do
  [ -n "$candidate" ] || continue
  if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "Countersign needs Python 3.12 or newer (Django 6.1 requires it), and none was found." >&2
echo "Install one (e.g. apt-get install python3.12, or pyenv install 3.13) or set PYTHON=/path/to/python3.12." >&2
exit 1
