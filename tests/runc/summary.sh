#!/usr/bin/env bash
# Compares the bats results of integration.sh: per file pass/fail/skip for stock vs nsentry, then
# every test that passes with stock but not with nsentry (a regression). Exits 1 if there is any.
#
#   bash tests/runc/summary.sh [root|rootless]
#
# The last line is machine-readable: "regressions N stock_pass P nsentry_pass Q".
set -euo pipefail
work=${NSENTRY_RUNC_WORK:-/var/tmp/nsentry-runc}
mode=${1:-root}
a=$work/results/$mode-stock
b=$work/results/$mode-nsentry
[ -d "$a" ] && [ -d "$b" ] || { echo "summary: no results in $a and $b" >&2; exit 2; }

# "<file>\t<status>\t<name>" for every test of a result dir; status is pass, fail or skip.
results() {
  local f
  for f in "$1"/*.tap; do
    awk -v file="$(basename "$f" .tap)" '
      /^ok [0-9]+ / {
        name = $0; sub(/^ok [0-9]+ /, "", name)
        st = "pass"
        if (name ~ / # [Ss][Kk][Ii][Pp]/) { st = "skip"; sub(/ # [Ss][Kk][Ii][Pp].*/, "", name) }
        print file "\t" st "\t" name
      }
      /^not ok [0-9]+ / { name = $0; sub(/^not ok [0-9]+ /, "", name); print file "\tfail\t" name }
    ' "$f"
  done
}

ra=$(mktemp) rb=$(mktemp)
trap 'rm -f "$ra" "$rb"' EXIT
results "$a" >"$ra"
results "$b" >"$rb"

count() { awk -F'\t' -v f="$2" -v s="$3" '$1 == f && $2 == s' "$1" | wc -l; }
echo "runc bats suite ($mode): pass/fail/skip"
printf '| %-28s | %-12s | %-12s |\n' file stock nsentry
printf '|%s|%s|%s|\n' "------------------------------" "--------------" "--------------"
for f in $(cut -f1 "$ra" "$rb" | sort -u); do
  printf '| %-28s | %-12s | %-12s |\n' "$f" \
    "$(count "$ra" "$f" pass)/$(count "$ra" "$f" fail)/$(count "$ra" "$f" skip)" \
    "$(count "$rb" "$f" pass)/$(count "$rb" "$f" fail)/$(count "$rb" "$f" skip)"
done
tot() { awk -F'\t' -v s="$2" '$2 == s' "$1" | wc -l; }
printf '| %-28s | %-12s | %-12s |\n' "total" \
  "$(tot "$ra" pass)/$(tot "$ra" fail)/$(tot "$ra" skip)" \
  "$(tot "$rb" pass)/$(tot "$rb" fail)/$(tot "$rb" skip)"

# Regressions: passes with stock, and with nsentry is failed or missing (a file that died).
regressions=$(awk -F'\t' 'NR == FNR { if ($2 == "pass") nsentry[$1 "\t" $3] = 1; next }
                         $2 == "pass" && !(($1 "\t" $3) in nsentry) { print $1 ": " $3 }' "$rb" "$ra")
n=0
if [ -n "$regressions" ]; then
  n=$(wc -l <<<"$regressions")
  echo
  echo "passes with stock, fails with nsentry ($n):"
  sed 's/^/  /' <<<"$regressions"
fi
for d in "$a" "$b"; do
  [ -f "$d/seconds" ] && echo "$(basename "$d"): $(cat "$d/seconds") s"
done
echo "regressions $n stock_pass $(tot "$ra" pass) nsentry_pass $(tot "$rb" pass)"
[ "$n" -eq 0 ]
