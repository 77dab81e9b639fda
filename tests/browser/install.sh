#!/usr/bin/env bash
# Installs what the browser test needs, never a downloaded browser:
#   - Debian's chromium (/usr/bin/chromium), from apt when it is missing;
#   - playwright-core from npm into tests/browser/node_modules (`npm ci` from the
#     committed package-lock.json), again only when it is missing or the lock changed.
# Idempotent and quick (well under a second) when both are present.
# Root installs with apt-get directly; anyone else needs sudo for the apt step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chromium=/usr/bin/chromium

if [[ ! -x "$chromium" ]]; then
    sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    echo "browser-deps: installing Debian's chromium (apt-get)" >&2
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
# (Debian's launcher script prints a harmless shell warning on stderr here.)
"$chromium" --version >&2 2>/dev/null || { echo "browser-deps: $chromium does not start" >&2; exit 1; }

command -v npm >/dev/null || { echo "browser-deps: npm (Node.js >= 20) is needed" >&2; exit 1; }

# npm ci wipes node_modules and reinstalls: run it only when the installed tree
# does not come from the committed lock file (a copy of it is kept as the stamp).
stamp="$here/node_modules/.installed-package-lock.json"
if [[ ! -f "$stamp" ]] || ! cmp -s "$here/package-lock.json" "$stamp"; then
    echo "browser-deps: npm ci (playwright-core)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts)
    cp "$here/package-lock.json" "$stamp"
fi
node -e 'console.error("playwright-core " + require(process.argv[1]).version)' \
    "$here/node_modules/playwright-core/package.json"
