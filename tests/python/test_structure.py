"""scripts/check_structure.py: the core has no import cycle between files and
no oversized file, and the checker finds both when they are there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_structure.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_core_passes() -> None:
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no cycle" in done.stdout


def test_a_cycle_through_a_reexport_is_found(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\n",
            # b reaches a's item through a's parent-less re-export path.
            "a/mod.rs": "mod inner;\npub use inner::Thing;\nuse crate::b::helper;\n",
            "a/inner.rs": "use crate::b::Other;\npub struct Thing;\n",
            "b.rs": "use crate::a::Thing;\npub struct Other;\npub fn helper() {}\n",
        },
    )
    done = run("--src", str(src))
    assert done.returncode == 1
    assert "import cycle between a/inner.rs, b.rs" in done.stdout
    # a/mod.rs -> b.rs -> a/inner.rs is no cycle: mod.rs is not reached back.
    assert "a/mod.rs," not in done.stdout


def test_test_code_and_comments_make_no_edge(tmp_path: Path) -> None:
    src = write(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": (
                "// use crate::a::A;\n/// See [`crate::a::A`].\npub struct B;\n"
                "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n"
            ),
        },
    )
    done = run("--src", str(src))
    assert done.returncode == 0, done.stdout


def test_an_oversized_file_needs_a_reason(tmp_path: Path) -> None:
    body = "".join(f"pub fn f{i}() {{}}\n" for i in range(701))
    tests = "#[cfg(test)]\nmod tests {\n" + "    fn t() {}\n" * 900 + "}\n"
    src = write(
        tmp_path,
        {
            "lib.rs": "mod big;\nmod small;\n#[cfg(test)]\nmod only_tests;\n",
            "big.rs": body,
            "small.rs": "pub fn g() {}\n" + tests,
            "only_tests.rs": body,
        },
    )
    done = run("--src", str(src))
    assert done.returncode == 1
    assert "big.rs: 701 lines of code" in done.stdout
    assert "small.rs" not in done.stdout, "a #[cfg(test)] block is not counted"
    assert "only_tests.rs" not in done.stdout, "a file of tests is not counted"
    (tmp_path / "big.rs").write_text("// size: one generated table\n" + body)
    assert run("--src", str(src)).returncode == 0
