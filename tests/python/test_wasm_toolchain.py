"""scripts/lib/wasm-toolchain.sh: the Debian route installs every package the
wasm32 builds need, named explicitly, and fails before any build, naming the
package, when one stays missing (issue 8: rust-web-llvm, which carries
rust-lld, was only recommended by rustc-web and the worker failed to link).

ensure_debian_toolchain runs in bash against a fake dpkg database and a fake
apt: each test says which packages are installed, which files exist, and what
an install brings.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The script under test, with dpkg-query and apt_install replaced by bash
# functions reading and writing $STATE; everything else is the real code.
HARNESS = r"""
set -euo pipefail
ROOT="$1" STATE="$2"
source "$ROOT/scripts/lib/wasm-toolchain.sh"
# The real table's packages, with files under $STATE instead of /usr.
DEBIAN_NEEDS=(
    rustc-web="$STATE/usr/bin/rustc"
    cargo-web="$STATE/usr/bin/cargo"
    rust-web-src="$STATE/usr/lib/rustlib/src/rust/library/std"
    rust-web-llvm=f3dx-test-rust-lld
    lld-22="$STATE/usr/bin/lld-22"
)
dpkg-query() {
    local pkg="${*: -1}" p
    while read -r p; do
        if [ "$p" = "$pkg" ]; then printf 'install ok installed'; return 0; fi
    done <"$STATE/installed"
    return 1
}
apt_install() {
    printf '%s\n' "$*" >>"$STATE/apt-calls"
    local p
    for p in "$@"; do
        printf '%s\n' "$p" >>"$STATE/installed"
        if [ -f "$STATE/brings/$p" ]; then bash "$STATE/brings/$p"; fi
    done
}
if [ -f "$STATE/no-apt-get" ]; then
    PATH="$STATE/empty"   # no apt-get to find (the code above needs no other program)
else
    apt-get() { :; }      # `command -v apt-get` finds a function too
    PATH="$STATE/bin:$PATH"
fi
ensure_debian_toolchain
"""

# What each package puts on disk, relative to the state directory.
FILES = {
    "rustc-web": "usr/bin/rustc",
    "cargo-web": "usr/bin/cargo",
    "rust-web-src": "usr/lib/rustlib/src/rust/library/std/",
    "rust-web-llvm": "bin/f3dx-test-rust-lld",  # a link to lld-22, as Debian's
    "lld-22": "usr/bin/lld-22",
}
PACKAGES = list(FILES)


@dataclass
class Run:
    returncode: int
    stderr: str
    apt_calls: list[list[str]]


class Machine:
    """A state directory: what dpkg says is installed and what is on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("empty", "bin", "brings"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "installed").write_text("")
        for pkg in PACKAGES:
            # What apt brings when it installs pkg: its file.
            (root / "brings" / pkg).write_text(self._make_file_script(pkg))

    def _make_file_script(self, pkg: str) -> str:
        path = self.root / FILES[pkg]
        if pkg == "rust-web-src":
            return f"mkdir -p '{path}'\n"
        if pkg == "rust-web-llvm":
            return f"ln -sf '{self.root / FILES['lld-22']}' '{path}'\n"
        return f"mkdir -p '{path.parent}' && printf '#!/bin/sh\\n' >'{path}' && chmod +x '{path}'\n"

    def install(self, *pkgs: str) -> None:
        """As if installed before: listed by dpkg, files on disk."""
        for pkg in pkgs:
            with (self.root / "installed").open("a") as f:
                f.write(pkg + "\n")
            subprocess.run(["bash", str(self.root / "brings" / pkg)], check=True)

    def apt_brings_nothing_for(self, pkg: str) -> None:
        (self.root / "brings" / pkg).write_text("")

    def without_apt_get(self) -> None:
        (self.root / "no-apt-get").write_text("")

    def ensure(self) -> Run:
        done = subprocess.run(
            ["bash", "-c", HARNESS, "harness", str(ROOT), str(self.root)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        calls_file = self.root / "apt-calls"
        calls = [line.split() for line in calls_file.read_text().splitlines()] if calls_file.exists() else []
        return Run(done.returncode, done.stderr, calls)


def test_the_table_names_rust_web_llvm_for_rust_lld() -> None:
    # The real table (not the harness's copy): rust-lld looked up on PATH, as
    # rustc does, and carried by rust-web-llvm; every package of the route.
    done = subprocess.run(
        ["bash", "-c", 'ROOT="$1"; source "$ROOT/scripts/lib/wasm-toolchain.sh"; printf "%s\\n" "${DEBIAN_NEEDS[@]}"',
         "table", str(ROOT)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    needs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert needs["rust-web-llvm"] == "rust-lld"
    assert sorted(needs) == sorted(PACKAGES)
    assert needs["rust-web-src"].endswith("/std")


def test_nothing_to_do_when_everything_is_there(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.install(*PACKAGES)
    run = m.ensure()
    assert (run.returncode, run.apt_calls) == (0, []), run.stderr


def test_a_new_machine_gets_every_package_in_one_install(tmp_path: Path) -> None:
    run = Machine(tmp_path).ensure()
    assert run.returncode == 0, run.stderr
    assert run.apt_calls == [PACKAGES]


def test_rust_web_llvm_is_installed_when_only_it_is_missing(tmp_path: Path) -> None:
    # Issue 8's machine: rustc-web and the rest installed without recommends.
    m = Machine(tmp_path)
    m.install("rustc-web", "cargo-web", "rust-web-src", "lld-22")
    run = m.ensure()
    assert run.returncode == 0, run.stderr
    assert run.apt_calls == [["rust-web-llvm"]]
    assert "installing Debian packages: rust-web-llvm" in run.stderr


def test_a_linker_still_missing_after_the_install_fails_naming_its_package(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.install("rustc-web", "cargo-web", "rust-web-src", "lld-22")
    m.apt_brings_nothing_for("rust-web-llvm")
    run = m.ensure()
    assert run.returncode == 1
    assert "missing after installing: f3dx-test-rust-lld (from the Debian package rust-web-llvm)" in run.stderr
    assert "apt-get install --reinstall --no-install-recommends rust-web-llvm" in run.stderr


def test_a_dangling_rust_lld_counts_as_missing(tmp_path: Path) -> None:
    # rust-lld is a link to lld-22: with lld-22's file gone, both are named.
    m = Machine(tmp_path)
    m.install(*PACKAGES)
    (tmp_path / FILES["lld-22"]).unlink()
    m.apt_brings_nothing_for("lld-22")  # installed already: apt would do nothing
    run = m.ensure()
    assert run.returncode == 1
    assert run.apt_calls == [["rust-web-llvm", "lld-22"]]
    assert "(from the Debian package rust-web-llvm)" in run.stderr
    assert "(from the Debian package lld-22)" in run.stderr


def test_without_apt_get_it_fails_naming_what_is_missing(tmp_path: Path) -> None:
    m = Machine(tmp_path)
    m.install("rustc-web", "cargo-web", "rust-web-src", "lld-22")
    m.without_apt_get()
    run = m.ensure()
    assert run.returncode == 1
    assert run.apt_calls == []
    assert "needs Debian's rust-web-llvm" in run.stderr
    assert "rustup toolchain with the wasm32-unknown-unknown target" in run.stderr
