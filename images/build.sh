#!/usr/bin/env bash
# Builds the notebook images the Docker spawner runs:
#   oerhub/python:latest  JupyterLab 4, Notebook 7, bokeh, folium, pandas, numpy, nbgitpuller,
#                         nbclient and oerhub_singleuser (the hub-proxy identity provider)
#   oerhub/r:latest       the Python image plus R and IRkernel from Debian
# on a Debian base made by base.sh when the engine has none. Layer-cache friendly: system
# packages, then Python packages, then our small package, so an unchanged rebuild takes seconds.
#
#   OERHUB_IMAGE_PREFIX  name prefix (default oerhub/): images are <prefix>python and <prefix>r
#   OERHUB_IMAGE_TAG     tag (default latest)
#   OERHUB_IMAGES        which to build (default "python r")
#   OERHUB_BASE_IMAGE    the base (default oerhub/debian-base:bookworm)
#   OERHUB_WHEEL_CACHE   where downloaded wheels are kept (default ~/.cache/oerhub/wheels)
#   PYTHON               interpreter that downloads the wheels (default python3)
#   OERHUB_IMAGE_PYTHON  Python version inside the images (default 3.11.2, Debian bookworm's):
#                        wheels are chosen for it, not for the downloading interpreter
#
# Python packages are downloaded on this machine (pip download, with its own certificates and
# index settings) and installed in the image with --no-index: builds then work wherever the
# host's pip works, and the same wheels give the same layer, so the cache holds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${OERHUB_IMAGE_PREFIX:-oerhub/}"
tag="${OERHUB_IMAGE_TAG:-latest}"
images="${OERHUB_IMAGES:-python r}"
export OERHUB_BASE_IMAGE="${OERHUB_BASE_IMAGE:-oerhub/debian-base:bookworm}"

die() { echo "build.sh: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (start it: bash .ci/docker.sh daemon-start)"

bash "$here/base.sh"

# Build contexts are assembled in a scratch folder, so the repository stays clean and the
# Python image gets the same oerhub_singleuser sources and Jupyter version ranges as the venv.
work="$(mktemp -d /tmp/oerhub-images.XXXXXX)"
trap 'rm -rf -- "$work"' EXIT

python="${PYTHON:-python3}"
wheel_cache="${OERHUB_WHEEL_CACHE:-$HOME/.cache/oerhub/wheels}"
image_python="${OERHUB_IMAGE_PYTHON:-3.11.2}"

# Wheels for the requirements, downloaded once per (requirements, interpreter version).
wheelhouse() {
  local reqs=("$here/venv/requirements.txt" "$here/python/requirements.txt")
  local key dir
  key="$({ echo "$image_python"; "$python" -c 'import sys; print(sys.platform)'; cat "${reqs[@]}"; } | sha256sum | cut -c1-16)"
  dir="$wheel_cache/$key"
  if [[ ! -f "$dir/.complete" ]]; then
    echo "Downloading Python wheels into $dir" >&2
    rm -rf -- "$dir.tmp"
    mkdir -p "$dir.tmp"
    "$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: --python-version "$image_python" -d "$dir.tmp" \
      -r "${reqs[0]}" -r "${reqs[1]}" 'setuptools>=61' wheel >&2 \
      || die "pip download failed (is PyPI reachable from this machine?)"
    rm -rf -- "$dir"
    mv -- "$dir.tmp" "$dir"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

revision="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"

build() {
  local name="$1" ctx="$work/$1"
  mkdir -p "$ctx"
  cp -R "$here/$name/." "$ctx/"
  if [[ "$name" == python ]]; then
    cp "$here/venv/requirements.txt" "$ctx/venv-requirements.txt"
    cp -R "$here/venv/oerhub_singleuser" "$ctx/oerhub_singleuser"
    cp "$here/venv/lab-overrides.json" "$ctx/lab-overrides.json"
    mkdir -p "$ctx/wheels"
    cp "$(wheelhouse)"/*.whl "$ctx/wheels/"
    find "$ctx/oerhub_singleuser" \( -name __pycache__ -o -name build -o -name '*.egg-info' \) -prune -exec rm -rf -- {} +
  fi
  # Same modification times on every run: some builders hash them into the cache key.
  find "$ctx" -exec touch -h -d '2000-01-01T00:00:00Z' {} +
  echo "Building ${prefix}${name}:${tag}"
  local started=$SECONDS
  DOCKER_BUILDKIT=0 docker build --quiet --force-rm \
    --build-arg "BASE=$OERHUB_BASE_IMAGE" \
    --build-arg "PYTHON_IMAGE=${prefix}python:${tag}" \
    --label "org.oerhub.revision=$revision" \
    -t "${prefix}${name}:${tag}" "$ctx" >"$work/$name.log" 2>&1 \
    || { tail -n 40 "$work/$name.log" >&2; die "building ${prefix}${name}:${tag} failed"; }
  echo "Built ${prefix}${name}:${tag} ($(docker image inspect -f '{{.Id}}' "${prefix}${name}:${tag}" | cut -c8-19)) in $((SECONDS - started))s"
}

for name in $images; do
  case "$name" in
    python | r) build "$name" ;;
    *) die "unknown image $name (python, r)" ;;
  esac
done
