# shellcheck shell=bash
# Installing Debian packages from the project's scripts, idempotently.
# Source it; callers define their own messages.

# Run a command as root (apt), through sudo when we are not root already.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# Install packages, refreshing the package lists only when apt does not know
# them yet; DPkg::Lock::Timeout waits for another apt/dpkg rather than fail.
apt_install() {
    if ! apt-cache show "$@" >/dev/null 2>&1; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -q
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
}
