#!/usr/bin/env bash
# A self-signed certificate for a trial of oerhub behind nginx (browsers will warn; use your
# CA's or Let's Encrypt's certificate in production).
#   nginx/make-cert.sh hub.example.edu [/etc/oerhub/tls] [days]
# Writes key.pem (0600) and cert.pem into the folder, with the name (and 127.0.0.1/localhost)
# as subjectAltName, which browsers require.
set -euo pipefail
name="${1:?usage: make-cert.sh HOSTNAME [DIR] [DAYS]}"
dir="${2:-/etc/oerhub/tls}"
days="${3:-365}"
command -v openssl >/dev/null || { echo "make-cert.sh: openssl is missing (apt-get install -y openssl)" >&2; exit 1; }
mkdir -p "$dir"
umask 077
if [[ "$name" =~ ^[0-9.]+$ ]]; then san="IP:$name"; else san="DNS:$name"; fi
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -subj "/CN=$name" \
  -addext "subjectAltName=$san,DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 600 "$dir/key.pem"
chmod 644 "$dir/cert.pem"
echo "wrote $dir/cert.pem and $dir/key.pem for $name ($days days)"
