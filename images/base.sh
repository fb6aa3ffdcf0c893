#!/usr/bin/env bash
# Makes the Debian base every notebook image starts from, when the engine doesn't have it yet:
# no registry can be pulled from here, so the base is bootstrapped from the machine's own Debian
# mirror (read from its apt configuration, never written into a file) and imported.
#
#   OERHUB_BASE_IMAGE   name of the base (default oerhub/debian-base:bookworm)
#   OERHUB_REBUILD_BASE=1  make it again even if it exists
set -euo pipefail

base="${OERHUB_BASE_IMAGE:-oerhub/debian-base:bookworm}"
suite="bookworm"

die() { echo "base.sh: $*" >&2; exit 1; }

if [[ "${OERHUB_REBUILD_BASE:-0}" != 1 ]] && docker image inspect "$base" >/dev/null 2>&1; then
  echo "Base image present: $base"
  exit 0
fi

# The first non-security Debian mirror in this machine's apt sources (deb822 first, then the
# one-line format).
mirror_from_apt() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      [[ "$uri" == *security* ]] && continue
      echo "$uri"
      return 0
    done < <(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    uri="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")"
    [[ -n "$uri" ]] && { echo "$uri"; return 0; }
  done
  return 1
}

command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (apt-get install -y debootstrap)"
[[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
mirror="$(mirror_from_apt)" || die "no Debian mirror found in /etc/apt sources"

root="$(mktemp -d /tmp/oerhub-base.XXXXXX)"
trap 'rm -rf -- "$root"' EXIT
echo "Bootstrapping Debian $suite (minbase) into $root"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; die "debootstrap failed"; }
rm -f -- "$root.log"
# Smaller and reproducible-ish: no package lists or caches in the layer.
rm -rf -- "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

echo "Importing $base"
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'LABEL org.oerhub.image=debian-base' \
  --change "LABEL org.oerhub.debian-suite=$suite" \
  --change 'CMD ["/bin/bash"]' \
  - "$base" >/dev/null
echo "Base image ready: $base"
