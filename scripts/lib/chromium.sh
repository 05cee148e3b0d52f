# Sourced by the test scripts: Debian's Chromium for the browser tests (never a downloaded
# browser). Idempotent: nothing happens when /usr/bin/chromium is there.
if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing Debian's chromium for the browser tests"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser tests need Debian's chromium: apt-get install chromium" >&2
    exit 1
  fi
fi
