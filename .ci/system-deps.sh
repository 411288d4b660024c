#!/usr/bin/env bash
# The system packages the test suite needs, installed when missing and installable (Debian/Ubuntu, as root):
#   chromium                  the browser tests (Playwright drives Debian's chromium; the report screenshot)
#   wordnet-base              the test that holds the shipped WordNet table against the full database
#   openjdk-17-jre-headless   a JVM for the Spark tests
# Runs `apt-get update` at most once. When something cannot be installed it says what and how, and returns 0:
# the tests that need it then skip, and under CI (or TRUSTEQ_STRICT_DEPS) those skips fail the run.
set -uo pipefail

_missing=()
command -v chromium >/dev/null 2>&1 || [ -x "${TRUSTEQ_CHROMIUM:-/usr/bin/chromium}" ] || _missing+=(chromium)
[ -f /usr/share/wordnet/index.noun ] || [ -n "${TRUSTEQ_WORDNET_DIR:-}" ] || _missing+=(wordnet-base)
command -v java >/dev/null 2>&1 || _missing+=(openjdk-17-jre-headless)
[ ${#_missing[@]} -eq 0 ] && exit 0

_cmd="apt-get update && apt-get install -y --no-install-recommends ${_missing[*]}"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "tests/run.sh: installing the system packages the tests need: ${_missing[*]}" >&2
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${_missing[@]}" >/dev/null); then
    exit 0
  fi
  echo "tests/run.sh: ERROR: could not install ${_missing[*]} (see apt-get's messages above)." >&2
elif command -v apt-get >/dev/null 2>&1; then
  echo "tests/run.sh: missing system packages: ${_missing[*]}; install them as root with: sudo sh -c '$_cmd'" >&2
else
  echo "tests/run.sh: missing system packages: ${_missing[*]} (no apt-get here: install chromium, WordNet 3.0's" \
       "database files (set TRUSTEQ_WORDNET_DIR) and a Java 17 runtime with your system's package manager)" >&2
fi
echo "tests/run.sh: the tests that need them will be skipped, which fails the run under CI=true or TRUSTEQ_STRICT_DEPS=1." >&2
exit 0
