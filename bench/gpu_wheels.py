#!/usr/bin/env python3
"""Download the wheels the GPU machine lacks into .whl/ (ignored by git), for bench/gpu.py.

    python bench/gpu_wheels.py            # then carry ".whl" in the device run (README-gpu.md)
    python bench/gpu_wheels.py --check    # only check what is there

The GPU machine has Python 3.12, torch 2.11 and transformers 5.17, and no diffusers or
pycocotools; nothing there can reach a registry. The engines need, at this project's pins
(requirements.txt): diffusers, transformers, tokenizers, pycocotools; regex is pinned here
too because transformers checks its version on import and the machine's is unknown. torch
stays the machine's (a CUDA build; torch is never carried). gradio, sqlite-utils and the rest
of the studio are not needed by the engines or the benches.

Each is fetched with `pip download --no-deps --only-binary=:all:` for CPython 3.12 on
manylinux x86_64; a wheel of another version of the same package is removed (two versions
would stop the install). At the end the carried total (.whl plus the working tree that
travels: tracked and untracked, not ignored, files) must stay under 64 MiB.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".whl"
FROM_REQUIREMENTS = ("diffusers", "transformers", "tokenizers", "pycocotools")
EXTRA_PINS = {"regex": "2026.11.19"}     # the version this project's venv runs
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
LIMIT = 64 * 2 ** 20


def pins() -> dict:
    """{name: version} for the carried packages, from requirements.txt and EXTRA_PINS."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if m and m.group(1).lower() in FROM_REQUIREMENTS:
            found[m.group(1).lower()] = m.group(2)
    missing = [n for n in FROM_REQUIREMENTS if n not in found]
    if missing:
        raise SystemExit(f"requirements.txt pins none of {missing}; pin them (name==version)")
    return {**found, **EXTRA_PINS}


def wheel_name(path: Path) -> tuple:
    """('tokenizers', '0.23.3') from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return name.lower().replace("_", "-"), version


def tree_bytes() -> int:
    """Bytes of what a device run sends: tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    total = 0
    for name in listed:
        path = ROOT / name.decode()
        if name and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def download(wanted: dict) -> None:
    WHEELS.mkdir(exist_ok=True)
    for path in WHEELS.glob("*.whl"):
        name, version = wheel_name(path)
        if wanted.get(name) != version:
            print(f"removing {path.name} (not the pinned {wanted.get(name)})")
            path.unlink()
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms,
                    "-d", str(WHEELS), *[f"{n}=={v}" for n, v in wanted.items()]], check=True)


def check(wanted: dict) -> int:
    have = {wheel_name(p): p for p in WHEELS.glob("*.whl")}
    problems = [f"{n}=={v} missing" for n, v in wanted.items() if (n, v) not in have]
    wheels = sum(p.stat().st_size for p in have.values())
    tree = tree_bytes()
    for _, p in sorted(have.items()):
        print(f"  {p.name}  {p.stat().st_size / 2 ** 20:.1f} MiB")
    print(f"wheels {wheels / 2 ** 20:.1f} MiB + working tree {tree / 2 ** 20:.1f} MiB = "
          f"{(wheels + tree) / 2 ** 20:.1f} MiB (limit 64 MiB)")
    if wheels + tree >= LIMIT:
        problems.append("over the 64 MiB a device run may carry")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    return 1 if problems else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check .whl/ and the size")
    args = parser.parse_args(argv)
    wanted = pins()
    if not args.check:
        download(wanted)
    return check(wanted)


if __name__ == "__main__":
    sys.exit(main())
