#!/usr/bin/env bash
# Creates or updates the notebook virtual environment the local-process spawner runs
# (`npm run venv`). Idempotent: a stamp file holds a hash of everything that goes into the
# environment, so an unchanged tree costs one hash and no pip run (it runs before every
# `npm start` and `npm test`).
#
#   OERHUB_NOTEBOOK_VENV  where the environment goes (default ./.venv-notebook, relative to
#                         the repository root, whatever the current directory is; as root
#                         /opt/oerhub/venv-notebook, the hub's default then, because the
#                         servers' own accounts can't reach a checkout under /root)
#   PYTHON                interpreter to build it from (default python3)
set -euo pipefail
# Notebook servers run as their own unprivileged Unix accounts (localIsolation=unix-users), so
# everything installed here must be readable by every account, whatever the caller's umask.
umask 022

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

if [[ "$(id -u)" == 0 ]]; then default_venv=/opt/oerhub/venv-notebook; else default_venv=./.venv-notebook; fi
venv="${OERHUB_NOTEBOOK_VENV:-$default_venv}"
case "$venv" in
  /*) ;;
  *) venv="$repo_root/${venv#./}" ;;
esac

requirements="$here/requirements.txt"
package_dir="$here/oerhub_singleuser"
stamp="$venv/.oerhub-build-stamp"

die() {
  echo "build.sh: $*" >&2
  exit 1
}

# Whether an account other than ours can run `$1`: the file (through links) is o+rx and every
# folder above it o+x. pyenv's interpreters live under /root (0700), for example.
others_can_run() {
  local target dir perms
  target="$(readlink -f -- "$(command -v -- "$1" 2>/dev/null || echo "$1")")" || return 1
  [[ -e "$target" ]] || return 1
  perms="$(stat -c %A -- "$target")"
  [[ "${perms:7:1}" == r && "${perms:9:1}" =~ [xt] ]] || return 1
  dir="$(dirname -- "$target")"
  while :; do
    perms="$(stat -c %A -- "$dir")"
    [[ "${perms:9:1}" =~ [xt] ]] || return 1
    [[ "$dir" == / ]] && return 0
    dir="$(dirname -- "$dir")"
  done
}

if [[ -z "${PYTHON:-}" ]] && ! others_can_run "$python" && others_can_run /usr/bin/python3; then
  echo "build.sh: $(command -v "$python" || echo "$python") can't be run by other accounts (the servers' own); using /usr/bin/python3" >&2
  python=/usr/bin/python3
elif ! others_can_run "$python"; then
  echo "build.sh: warning: other accounts can't run $python, so a hub running as root can't start servers from this environment; set PYTHON to an interpreter outside private folders" >&2
fi

command -v "$python" >/dev/null 2>&1 || die "$python not found. Install Python 3.9 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)."
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv; without it `-m venv` fails
# half-way with a confusing message, so check up front.
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "'$python -m venv' is unavailable: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)."

# Everything that changes the installed result: the requirements, our package's sources, this
# script and the interpreter version. Files are hashed in a stable order.
compute_hash() {
  {
    "$python" --version 2>&1
    cat "$here/build.sh"
    cat "$requirements"
    cat "$here/lab-overrides.json"
    (cd "$package_dir" && find . -type f \( -name '*.py' -o -name '*.toml' -o -name '*.cfg' -o -name '*.md' \) \
      -not -path '*/__pycache__/*' -not -path '*/build/*' -not -path '*.egg-info/*' -print | LC_ALL=C sort \
      | while IFS= read -r f; do echo "$f"; cat "$f"; done)
  } | sha256sum | cut -d' ' -f1
}

wanted="$(compute_hash)"

if [[ -f "$stamp" && -x "$venv/bin/jupyter" && "$(cat "$stamp")" == "$wanted" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1 \
  && { ! others_can_run "$python" || others_can_run "$venv/bin/python"; }; then
  echo "Notebook environment up to date: $venv"
  exit 0
fi

# An environment whose interpreter no longer runs (Python upgraded or removed) can't be
# repaired by pip; rebuild it, but only delete a folder that really is a venv.
# The same for one whose interpreter other accounts can't run, when a better one is at hand.
if [[ -e "$venv" ]] && { ! "$venv/bin/python" -c '' >/dev/null 2>&1 || { others_can_run "$python" && ! others_can_run "$venv/bin/python"; }; }; then
  [[ -f "$venv/pyvenv.cfg" ]] || die "$venv exists but is not a Python virtual environment; move it away or set OERHUB_NOTEBOOK_VENV."
  echo "Rebuilding notebook environment (broken, or its interpreter is private): $venv"
  rm -rf -- "$venv"
fi

if [[ ! -e "$venv" ]]; then
  echo "Creating notebook environment: $venv"
  "$python" -m venv "$venv" || die "'$python -m venv' failed: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)."
fi

# pip builds a local project in its own folder (build/, *.egg-info); build from a copy so the
# repository stays clean.
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
cp -R "$package_dir" "$work/oerhub_singleuser"
find "$work/oerhub_singleuser" \( -name __pycache__ -o -name build -o -name '*.egg-info' \) -prune -exec rm -rf -- {} +

echo "Installing JupyterLab and oerhub_singleuser into $venv (first run takes a few minutes)"
rm -f -- "$stamp"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  -r "$requirements" "$work/oerhub_singleuser"

[[ -x "$venv/bin/jupyter" ]] || die "pip finished but $venv/bin/jupyter is missing."
"$venv/bin/python" -c 'import oerhub_singleuser' || die "oerhub_singleuser does not import in $venv."
# Site-wide JupyterLab settings: no news or update pop-ups asking students about privacy.
mkdir -p "$venv/share/jupyter/lab/settings"
cp -- "$here/lab-overrides.json" "$venv/share/jupyter/lab/settings/overrides.json"

# Files an older build made under a stricter umask become readable (never writable) for all.
chmod -R a+rX,go-w -- "$venv"

echo "$wanted" >"$stamp.tmp"
mv -f -- "$stamp.tmp" "$stamp"
echo "Notebook environment ready: $venv"
