"""Structural rules of the tree, each checked so that it cannot slip back unnoticed."""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# engine/plugins.py adds the working folder so that `--engine-module my_plugin` finds a plugin
# beside the user's project: a documented user-facing search path, not an import hack.
SYS_PATH_ALLOWED = {"engine/plugins.py"}


def tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.split() if (ROOT / f).exists()]  # a deletion not yet committed


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    return [ROOT / f for folder in folders for f in tracked(f"{folder}/*.py")] if folders else \
        [ROOT / f for f in tracked("*.py")]


def test_no_file_changes_sys_path():
    offenders = []
    for path in python_files():
        rel = str(path.relative_to(ROOT))
        if rel in SYS_PATH_ALLOWED or rel.startswith("tests/test_house_rules"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
            if isinstance(target, ast.Attribute) and target.attr == "path" and getattr(target.value, "id", "") == "sys":
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"sys.path changed in {offenders}: install the project (`make`) or set PYTHONPATH"


@pytest.mark.parametrize("folder", ["app", "engine", "bench", "scripts"])
def test_nothing_outside_tests_imports_tests(folder):
    offenders = [str(p.relative_to(ROOT)) for p in python_files(folder)
                 if any(m == "tests" or m.startswith("tests.") for m in imported_modules(p))]
    assert not offenders, f"{offenders} import from tests/: move what they share into bench/ or the package"


def test_engine_never_imports_app_and_app_never_imports_torch():
    engine_to_app = [str(p.relative_to(ROOT)) for p in python_files("engine")
                     if any(m.split(".")[0] == "app" for m in imported_modules(p))]
    app_to_torch = [str(p.relative_to(ROOT)) for p in python_files("app")
                    if any(m.split(".")[0] == "torch" for m in imported_modules(p))]
    assert not engine_to_app, f"engine imports app in {engine_to_app}"
    assert not app_to_torch, f"app imports torch in {app_to_torch}"


def test_build_leftovers_are_ignored():
    leftovers = ["build/lib/app/x.py", "flowlabel.egg-info/PKG-INFO"]
    out = subprocess.run(["git", "check-ignore", *leftovers], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == leftovers, ".gitignore must cover build/ and *.egg-info/"


def test_quick_loop_keeps_session_tests_that_define_their_own_page():
    """Only tests on conftest's Chromium `page` are browser tests; a module's own `page`
    fixture (a Session on a real project) stays in the quick loop."""
    def collected(marker: str) -> int:
        out = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-m", marker,
                              "tests/test_page_tools.py"], cwd=ROOT, capture_output=True, text=True)
        return sum("::" in line for line in out.stdout.splitlines())
    assert collected("browser") == 0
    assert collected("not browser") >= 20


def test_a_built_wheel_carries_every_file_the_page_reads(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    wheel, = tmp_path.glob("flowlabel-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [f for f in tracked("app") if not f.endswith(".py")]
    assert data, "the page's css/js files are tracked under app/"
    missing = [f for f in data if f not in names]
    assert not missing, f"the wheel lacks {missing}: list them under [tool.setuptools.package-data]"
