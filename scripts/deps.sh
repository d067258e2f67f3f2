#!/usr/bin/env bash
# deps.sh - installs the Debian packages that building and testing portico
# need, and only those that are missing. Run by the Makefile; safe to rerun.
set -euo pipefail

packages=(
  gcc make                 # build
  libinih-dev              # INI config files (portico serve --config)
  libcrypt-dev             # crypt(3) for --auth-file passwords
  libjansson-dev           # JSON for PATCH (merge-patch)
  zlib1g-dev               # gzip on the fly
  libsodium-dev            # xfer: SHA-256 digests, HMAC-SHA256 cookies
  libcmocka-dev            # unit tests
  python3 python3-pytest   # integration tests (run by /usr/bin/python3)
  curl                     # integration tests talk to portico serve with it
  iptables iproute2        # xfer and proxy tests: namespaces, veth, random drops
  chromium nodejs          # the browser test (playwright-core from npm drives chromium)
  nsd unbound dnsutils     # DNS tests: the offline hierarchy, the peer resolver, dig
)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "${1:-}" = "--bench" ]; then
  packages+=(socat)
  packages+=(ethtool libnetfilter-queue-dev)  # bench/xfer.sh: offloads off, delay program
  packages+=(dnsperf)      # bench/dns.sh
  packages+=(wrk nginx-light varnish)   # bench/proxy.sh
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the nsd and unbound services it installs; the DNS tests run
# their own on port 53 of 127.53.N.x, which a daemon bound to every address
# would hold. Stop the packaged ones that this run installed.
for svc in nsd unbound; do
  if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null 2>&1 &&
     systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl disable --now "$svc" || true
  fi
done
