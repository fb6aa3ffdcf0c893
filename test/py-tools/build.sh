#!/usr/bin/env bash
# The Python clients of the REST API tests (jupyterhub-idle-culler, requests) in their own venv,
# test-output/py-tools by default (OERHUB_PY_TOOLS to move it). Idempotent: a stamp holds the
# requirements' hash, so an unchanged file costs no pip run. Fails loudly when pip fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
venv="${OERHUB_PY_TOOLS:-$repo_root/test-output/py-tools}"
requirements="$here/requirements.txt"
stamp="$venv/.oerhub-py-tools-stamp"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/jupyterhub-idle-culler" ]]; then
  exit 0
fi
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/python" -c 'import jupyterhub_idle_culler, requests' || { echo "py-tools: the installed packages do not import" >&2; exit 1; }
echo "$want" >"$stamp"
