#!/usr/bin/env bash
# Memory benchmark for `herald plan` (issue: plan over 1,000,000 recipients peaks at no more than
# 1.2x its peak over 100,000 plus 16 bytes per recipient). Not a test: it prints figures.
#
#   bash bench/plan-memory.sh            # 100k and 1M
#   SIZES="100000 1000000 2000000" bash bench/plan-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-100000 1000000}"
cargo build --release -q
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/c.yaml" <<'YAML'
id: memory-bench
purpose: marketing
audience: { source: people.csv }
template:
  name: promo
  language: { ru: ru, default: en }
  params: { name: "{{ first_name | default('friend') }}" }
schedule: { at: 2026-11-30T10:00, in: recipient, expires_after: 72h }
send_window:
  hours: { mon-fri: "09:00-20:00", sat: "10:00-18:00" }
  holidays: [country]
YAML
zones=(Europe/Moscow Asia/Yekaterinburg Asia/Novosibirsk Asia/Vladivostok Europe/Kaliningrad Asia/Kolkata Asia/Kathmandu America/St_Johns Australia/Adelaide America/New_York "")
declare -A peak
for n in $SIZES; do
    python3 - "$n" "$work/people.csv" "${zones[@]}" <<'PY'
import sys
n, path, zones = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(path, "w") as f:
    f.write("id,phone,timezone,locale,first_name\n")
    for i in range(n):
        f.write(f"r{i},+7916{i % 10_000_000:07d},{zones[i % len(zones)]},ru-RU,Name{i}\n")
PY
    kb=$( { /usr/bin/time -f '%M' ./target/release/herald plan "$work/c.yaml" --now 2026-11-29T00:00:00Z --format json >/dev/null; } 2>&1 | tail -1 )
    peak[$n]=$kb
    echo "plan over $n recipients: peak RSS ${kb} KiB"
done
set -- $SIZES
if [ $# -ge 2 ]; then
    small=$1; large=$2
    python3 - "$small" "${peak[$small]}" "$large" "${peak[$large]}" <<'PY'
import sys
small, small_kb, large, large_kb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
limit_kb = 1.2 * small_kb + 16 * large / 1024
print(f"bound: 1.2 x {small_kb} KiB + 16 B x {large} = {limit_kb:.0f} KiB; measured {large_kb} KiB "
      f"({large_kb / small_kb:.2f}x the {small} peak): {'PASS' if large_kb <= limit_kb else 'FAIL'}")
PY
fi
