#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs, idempotently: code-server (VS Code in a browser, from npm),
# Debian's chromium (driven headless by playwright-core) and the extension's own node modules.
#
# Usage: scripts/install_code_server.sh            (prints the code-server binary path on its last line)
# Env:   CODECONDUCTOR_CACHE   cache dir (default ~/.cache/codeconductor)
#        CODE_SERVER_VERSION   default 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20)
#        SKIP_APT=1            do not touch apt (packages must already be present)
set -euo pipefail

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
CACHE="${CODECONDUCTOR_CACHE:-$HOME/.cache/codeconductor}"
PREFIX="$CACHE/code-server-$CODE_SERVER_VERSION"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[install_code_server] $*" >&2; }

# 1. System packages: code-server's native modules need a compiler and kerberos headers; VS Code search needs rg.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need_apt+=(build-essential)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if ((${#need_apt[@]})); then
    if [[ "${SKIP_APT:-0}" == 1 ]]; then
        log "missing system packages: ${need_apt[*]} (SKIP_APT=1)"; exit 1
    fi
    SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    log "apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# 2. code-server from npm into the cache. Its postinstall (npm install inside lib/vscode) would download ripgrep
#    from GitHub, which is unreachable here, so we do its steps ourselves: install VS Code's modules without
#    scripts, put apt's rg where @vscode/ripgrep looks (its postinstall then skips the download), rebuild the
#    native modules, install the built-in extensions' modules and make postinstall.sh's symlinks.
BIN="$PREFIX/node_modules/.bin/code-server"
CS_ROOT="$PREFIX/node_modules/code-server"
STAMP="$PREFIX/.installed"
if [[ ! -f "$STAMP" ]]; then
    log "installing code-server $CODE_SERVER_VERSION into $PREFIX"
    mkdir -p "$PREFIX"
    [[ -f "$PREFIX/package.json" ]] || echo '{"name":"cc-code-server","private":true}' >"$PREFIX/package.json"
    (cd "$PREFIX" && npm install --no-audit --no-fund --ignore-scripts "code-server@$CODE_SERVER_VERSION" >&2)
    # code-server's own native module (password hashing, loaded at start even with --auth none): its prebuilt
    # download fails offline and node-pre-gyp falls back to building it.
    (cd "$PREFIX" && npm_config_yes=true npm rebuild argon2 --no-audit --no-fund >&2)
    VS="$CS_ROOT/lib/vscode"
    (cd "$VS" && npm install --omit=dev --ignore-scripts --no-audit --no-fund >&2)
    mkdir -p "$VS/node_modules/@vscode/ripgrep/bin"
    cp "$(command -v rg)" "$VS/node_modules/@vscode/ripgrep/bin/rg"
    # node-pty's build calls `npx node-gyp`: answer yes to npx's prompt.
    (cd "$VS" && npm_config_yes=true npm rebuild --no-audit --no-fund >&2)
    (cd "$VS/extensions" && npm install --omit=dev --no-audit --no-fund >&2)
    ln -sfn node_modules "$VS/node_modules.asar"
    ln -sfn code-linux.sh "$VS/bin/remote-cli/code-server"
    ln -sfn browser-linux.sh "$VS/bin/helpers/browser.sh"
    "$BIN" --config "$PREFIX/config.yaml" --version >&2
    touch "$STAMP"  # only after every step worked, so a failed install is retried next time
fi

# 3. The extension's node modules (TypeScript, vsce, playwright-core for the e2e driver).
if [[ ! -d "$HERE/vscode-extension/node_modules/playwright-core" ]]; then
    log "npm install in vscode-extension/"
    (cd "$HERE/vscode-extension" && npm install --no-audit --no-fund >&2)
fi

echo "$BIN"
