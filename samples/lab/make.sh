#!/usr/bin/env bash
# Rebuild one sample pattern, or all of them: samples/lab/make.sh [PATTERN...]
# Each pattern is samples/lab/<PATTERN>.sh; it writes into samples/<PATTERN>/ and checks its
# signature with tshark. Needs root (network namespaces), tcpdump, tshark, nft, iptables.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 0 ]; then
    set -- $(cd "$here" && ls ./*.sh | sed 's|^\./||; s|\.sh$||' | grep -vx 'lib\|make')
fi
for pattern in "$@"; do
    script="$here/$pattern.sh"
    [ -f "$script" ] || { echo "make.sh: no such pattern: $pattern (no $script)" >&2; exit 2; }
    echo "== $pattern"
    bash "$script"
done
