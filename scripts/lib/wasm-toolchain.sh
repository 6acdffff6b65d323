# shellcheck shell=bash
# The wasm32 toolchain route of ../shared/TOOLCHAIN.md, shared by
# build-core-wasm.sh and build-worker.sh. Source it with ROOT set.

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

TARGET=wasm32-unknown-unknown
# rust-web-llvm is named explicitly: it carries /usr/bin/rust-lld, which the
# worker's cdylib links with, and rustc-web only *recommends* it (apt runs
# with --no-install-recommends here). The core's rlib builds without it.
DEBIAN_PKGS=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
DEBIAN_LINKER=/usr/bin/rust-lld
DEBIAN_SRC=/usr/lib/rustlib/src/rust/library

# Whether a rustup toolchain already has the wasm32 target (a laptop's).
rustup_has_target() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

# Debian's rustc-web 1.96 with the library sources, for -Zbuild-std; the
# plain `rustc` package is far too old. Installs only what is missing.
ensure_debian_toolchain() {
    local p missing=()
    for p in "${DEBIAN_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ] && [ -x /usr/bin/rustc ] && [ -d "$DEBIAN_SRC/std" ] &&
        [ -x "$DEBIAN_LINKER" ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "no rustup toolchain with $TARGET and no apt-get to install ${DEBIAN_PKGS[*]}" >&2
        return 1
    fi
    [ "${#missing[@]}" -gt 0 ] || missing=("${DEBIAN_PKGS[@]}")
    echo "installing Debian packages: ${missing[*]}" >&2
    apt_install "${missing[@]}"
    if [ ! -d "$DEBIAN_SRC/std" ]; then
        echo "$DEBIAN_SRC missing after installing ${DEBIAN_PKGS[*]}" >&2
        return 1
    fi
    # Fail here, naming the package, rather than at the worker's link step
    # with "linker \`rust-lld\` not found".
    if [ ! -x "$DEBIAN_LINKER" ]; then
        echo "$DEBIAN_LINKER missing after installing ${DEBIAN_PKGS[*]} (it comes from rust-web-llvm)" >&2
        return 1
    fi
}
