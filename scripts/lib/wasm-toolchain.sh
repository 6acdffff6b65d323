# shellcheck shell=bash
# The wasm32 toolchain route of ../shared/TOOLCHAIN.md, shared by
# build-core-wasm.sh and build-worker.sh. Source it with ROOT set.

# shellcheck source=scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"

TARGET=wasm32-unknown-unknown
DEBIAN_SRC=/usr/lib/rustlib/src/rust/library
# What the Debian route runs or reads, each as package=file (an absolute
# path, or a command looked up on PATH). rust-web-llvm is named explicitly:
# it carries rust-lld (a link to lld-22's lld), which rustc looks up on PATH
# to link the worker's cdylib, and rustc-web only *recommends* it (apt runs
# with --no-install-recommends here); without it the core's rlib builds and
# the worker fails at its link step.
DEBIAN_NEEDS=(
    rustc-web=/usr/bin/rustc
    cargo-web=/usr/bin/cargo
    rust-web-src="$DEBIAN_SRC/std"
    rust-web-llvm=rust-lld
    lld-22=/usr/bin/lld-22
)

# Whether a rustup toolchain already has the wasm32 target (a laptop's).
rustup_has_target() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

# Whether a DEBIAN_NEEDS file is there: a path (a program, or the sources'
# directory), or a command on PATH; a dangling link is not.
debian_file_present() {
    case "$1" in
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# The packages of DEBIAN_NEEDS that are not installed or whose file is
# missing (installed, but the file removed since, counts as missing).
debian_missing() {
    local need pkg status
    for need in "${DEBIAN_NEEDS[@]}"; do
        pkg="${need%%=*}"
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        if [ "$status" != "install ok installed" ] || ! debian_file_present "${need#*=}"; then
            printf '%s\n' "$pkg"
        fi
    done
}

# Debian's rustc-web 1.96 with the library sources, for -Zbuild-std; the
# plain `rustc` package is far too old. Installs only what is missing, and
# fails before any build, naming the packages, when something stays missing
# (rather than at the worker's link step with "linker `rust-lld` not found").
ensure_debian_toolchain() {
    local missing need
    mapfile -t missing < <(debian_missing)
    [ "${#missing[@]}" -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "the wasm32 build needs Debian's ${missing[*]} (or a rustup toolchain with the $TARGET target), and there is no apt-get to install them" >&2
        return 1
    fi
    echo "installing Debian packages: ${missing[*]}" >&2
    apt_install "${missing[@]}" || {
        echo "could not install Debian packages: ${missing[*]}" >&2
        return 1
    }
    mapfile -t missing < <(debian_missing)
    [ "${#missing[@]}" -gt 0 ] || return 0
    for need in "${DEBIAN_NEEDS[@]}"; do
        case " ${missing[*]} " in
        *" ${need%%=*} "*) echo "missing after installing: ${need#*=} (from the Debian package ${need%%=*})" >&2 ;;
        esac
    done
    echo "reinstall with: apt-get install --reinstall --no-install-recommends ${missing[*]}" >&2
    return 1
}
