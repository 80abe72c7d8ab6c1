#!/usr/bin/env python3
"""One command for a lent GPU: full-size figures for FlowRVS, FlowSeg and SAM 2, then demo
weights trained for the time left, all written to one report.

    python3 bench/gpu.py --out "$OUT"                 # on the GPU machine (bench/README-gpu.md)
    python bench/gpu.py --dry-run --out out/gpu-dry   # the same driver, tiny, on a CPU

In order, each part in its own subprocess under its own wall-clock cap (a part that runs
over is killed with its process group and reported as timed out; the next part starts):

  setup            the carried wheels (.whl/) installed with pip --no-index --no-deps into a
                   private folder put first on PYTHONPATH; versions and the device recorded;
                   the demo training data generated in the background
  flowrvs          bench/flowrvs.py, full preset, 81 frames at 480x832, release way and ours
  flowrvs-windows  bench/flowrvs_windows.py: memory per window frame and a 300-frame clip
  flowseg          bench/flowseg.py --preset full
  sam2             bench/sam2_sizes.py at hiera-tiny and hiera-large
  train            flowrvs-demo and flowseg-demo trained side by side (bench/gpu_parts.py
                   recipes) for the time left; their pipelines come back as .tar.gz

Out (at most 8 files, each under 16 MiB, no subfolders): report.json (everything), report.md
(the summary), logs.txt (each part's output, tails), flowrvs-demo.tar.gz, flowseg-demo.tar.gz.
--budget bounds the whole run; a part that would not fit in what is left is skipped with the
reason. --parts picks parts (setup always runs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.gpu_parts import BENCH_PARTS, recipes, train_log_summary

PART_NAMES = [p.name for p in BENCH_PARTS] + ["train"]
WHEELS = ROOT / ".whl"
SITE = Path(tempfile.gettempdir()) / "flowlabel-site"
MAX_FILE = 16 * 2 ** 20
LOG_TAIL = 60_000             # characters of each part's output kept in logs.txt
RESERVE_S = 20                # kept back for packing and the report
MIN_TRAIN_S = 60              # less than this left: training is skipped
DRY_TRAIN_CAP_S = 240         # a dry run trains 2 s per model: the cap covers start and export
DRY_TRAIN_S = 2


class Clock:
    def __init__(self, budget: float):
        self.start, self.budget = time.monotonic(), budget

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)


def run_capped(argv: list, cap: float, log: Path, env: dict) -> dict:
    """Run argv (from the repository root) with its output in `log`; kill its whole process
    group at `cap` seconds. -> {status, rc, seconds}."""
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, cap))
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc, status = None, "timed out"
    return {"status": status, "rc": rc, "seconds": round(time.monotonic() - t0, 1), "cap_s": cap}


def tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def fill(argv: list, **values) -> list:
    return [a.format(**values) if "{" in a else a for a in argv]


# --------------------------------------------------------------------------- setup

def install_wheels(dry: bool, log: Path) -> dict:
    """pip install --no-index --no-deps the carried wheels into SITE (a GPU run only)."""
    wheels = sorted(WHEELS.glob("*.whl"))
    if dry:
        return {"status": "skipped", "reason": "dry run: this machine has the pinned packages"}
    if not wheels:
        return {"status": "skipped", "reason": f"no wheels in {WHEELS} (run bench/gpu_wheels.py "
                                               "here and carry .whl)"}
    argv = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
            "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(SITE),
            *map(str, wheels)]
    done = run_capped(argv, 120, log, dict(os.environ))
    return {**done, "wheels": [w.name for w in wheels], "target": str(SITE)}


VERSIONS = """
import json, platform
out = {"python": platform.python_version()}
for name in ("torch", "transformers", "diffusers", "tokenizers", "safetensors",
             "huggingface_hub", "numpy", "pycocotools", "cv2", "scipy"):
    try:
        module = __import__(name)
        out[name] = getattr(module, "__version__", "present")
    except Exception as error:
        out[name] = f"missing: {type(error).__name__}: {error}"
import torch
out["cuda"] = torch.cuda.is_available()
if out["cuda"]:
    out["device"] = torch.cuda.get_device_name(0)
    out["cuda_version"] = torch.version.cuda
    free, total = torch.cuda.mem_get_info()
    out["gpu_memory_gb"] = [round(free / 1e9, 1), round(total / 1e9, 1)]
print("VERSIONS " + json.dumps(out))
"""


def versions(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", VERSIONS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    for line in done.stdout.splitlines():
        if line.startswith("VERSIONS "):
            return json.loads(line[len("VERSIONS "):])
    return {"error": done.stderr[-2000:]}


def start_data(dry: bool, work: Path, env: dict) -> list:
    """Generate each recipe's training data in the background; -> [(recipe, folder, Popen)]."""
    started = []
    for recipe in recipes(dry):
        folder = work / "data" / recipe.name
        log = open(work / f"data-{recipe.name}.log", "w")
        proc = subprocess.Popen([sys.executable, *fill(recipe.data, data=folder)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        started.append((recipe, folder, proc))
    return started


# --------------------------------------------------------------------------- parts

def bench_part(part, dry: bool, clock: Clock, work: Path, env: dict) -> dict:
    cap = part.dry_cap_s if dry else part.cap_s
    base = {"what": part.what}
    if clock.left() - RESERVE_S < min(cap, 30):
        return {**base, "status": "skipped", "reason": f"no time left ({clock.left():.0f} s)"}
    cap = min(cap, clock.left() - RESERVE_S)
    argv = [sys.executable, *fill(part.command(dry), work=work)]
    log = work / f"{part.name}.log"
    done = run_capped(argv, cap, log, env)
    result = {**base, **done, "command": " ".join(argv[1:]), "log_tail": tail(log)}
    json_path = next((Path(a.format(work=work)) for a in part.command(dry)
                      if a.endswith(".json")), None)
    if done["status"] == "ok" and json_path and json_path.is_file():
        data = json.loads(json_path.read_text())
        result["result"] = data
        try:
            result["summary"] = part.summary(data)
        except (KeyError, TypeError, ValueError) as error:
            result["summary"] = {"error": f"{type(error).__name__}: {error}"}
    elif done["status"] == "ok":
        result["status"] = "failed"
        result["reason"] = "the part wrote no JSON"
    return result


def train_part(dry: bool, clock: Clock, work: Path, out: Path, env: dict, data: list) -> dict:
    base = {"what": "flowrvs-demo and flowseg-demo trained side by side for the time left"}
    t_start = time.monotonic()
    left = clock.left() - RESERVE_S
    if left < (20 if dry else MIN_TRAIN_S):
        for _, _, proc in data:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return {**base, "status": "skipped", "reason": f"no time left ({clock.left():.0f} s)"}
    runs = {}
    for recipe, _, proc in data:
        try:
            proc.wait(timeout=max(1.0, min(left / 3, clock.left() - RESERVE_S)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        runs[recipe.name] = {"notes": recipe.notes, "data_rc": proc.returncode,
                             "data_log_tail": tail(work / f"data-{recipe.name}.log", 1500)}
    cap = clock.left() - RESERVE_S
    if dry:
        cap = min(cap, DRY_TRAIN_CAP_S)
    procs = {}
    for recipe, folder, _ in data:
        r = runs[recipe.name]
        if r["data_rc"] != 0:
            r.update(status="failed", reason="its training data were not generated")
            continue
        seconds = DRY_TRAIN_S if dry else max(1, int(cap - recipe.export_s))
        argv = [sys.executable, *fill(recipe.train, data=folder, run=work / recipe.name,
                                      seconds=seconds)]
        log = work / f"train-{recipe.name}.log"
        r.update(command=" ".join(argv[1:]), time_limit_s=seconds)
        procs[recipe.name] = (subprocess.Popen(argv, cwd=ROOT, stdout=open(log, "w"),
                                               stderr=subprocess.STDOUT, env=env,
                                               start_new_session=True), log, time.monotonic())
    for name, (proc, log, t0) in procs.items():
        r = runs[name]
        try:
            rc = proc.wait(timeout=max(1.0, cap - (time.monotonic() - t0)))
            r.update(status="ok" if rc == 0 else "failed", rc=rc)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            r.update(status="timed out", rc=None)
        r.update(seconds=round(time.monotonic() - t0, 1), log_tail=tail(log),
                 **train_log_summary(log.read_text(errors="replace")))
        pipeline = work / name / "pipeline"
        if r["status"] == "ok" and pipeline.is_dir():
            r["archive"] = pack(pipeline, log, out / f"{name}.tar.gz")
    statuses = {r.get("status") for r in runs.values()}
    return {**base, "status": "ok" if statuses == {"ok"} else "failed", "runs": runs,
            "seconds": round(time.monotonic() - t_start, 1)}


def pack(pipeline: Path, log: Path, archive: Path) -> dict:
    """The pipeline folder (and the training log) as one .tar.gz; refused over 16 MiB."""
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(pipeline, arcname="pipeline")
        tar.add(log, arcname="train.log")
    size = archive.stat().st_size
    if size >= MAX_FILE:
        archive.unlink()
        return {"error": f"{archive.name} is {size / 2 ** 20:.1f} MiB, over the 16 MiB a file "
                         "may take back"}
    return {"file": archive.name, "mib": round(size / 2 ** 20, 2)}


# --------------------------------------------------------------------------- report

def markdown(report: dict) -> str:
    env = report["setup"].get("versions", {})
    lines = [f"# GPU run: {report['mode']}", "",
             f"- when: {report['started']} UTC; wall {report['seconds']} s of a {report['budget_s']}"
             f" s budget",
             f"- device: {env.get('device', 'no CUDA device')}; torch {env.get('torch')}, "
             f"transformers {env.get('transformers')}, diffusers {env.get('diffusers')}, "
             f"python {env.get('python')}",
             f"- command: `{report['command']}`", "",
             "| part | status | seconds | figures |", "|---|---|---|---|"]
    for name in PART_NAMES:
        p = report["parts"].get(name, {"status": "pending"})
        figures = p.get("summary") or p.get("reason") or ""
        if name == "train" and "runs" in p:
            figures = {k: {f: v.get(f) for f in ("status", "last_step", "last_loss", "archive")}
                       for k, v in p["runs"].items()}
        lines.append(f"| {name} | {p['status']} | {p.get('seconds', '-')} | "
                     f"{json.dumps(figures) if isinstance(figures, dict) else figures} |")
    lines += ["", "Figures from random weights at the named sizes; the demo checkpoints are "
              "evaluated afterwards on new held-out seeds (bench/README-gpu.md).", ""]
    return "\n".join(lines)


def write_out(out: Path, work: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    with open(out / "logs.txt", "w") as f:
        for log in sorted(work.glob("*.log")):
            f.write(f"===== {log.name}\n{tail(log, LOG_TAIL)}\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "out" /
                                                         "gpu"))
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny presets on this machine's CPU, short caps")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run (default 480; dry run 900)")
    parser.add_argument("--parts", default=",".join(PART_NAMES),
                        help=f"comma-separated, of {','.join(PART_NAMES)} (default all)")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(args.parts) - set(PART_NAMES))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PART_NAMES}")
    args.budget = args.budget or (900 if args.dry_run else 480)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    clock = Clock(args.budget)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="flowlabel-gpu-"))
    report = {"mode": "dry run (CPU, tiny)" if args.dry_run else "full (GPU)",
              "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
              "command": " ".join(["bench/gpu.py", *(argv if argv is not None else sys.argv[1:])]),
              "budget_s": args.budget, "host": platform.node(), "parts": {}}

    installed = install_wheels(args.dry_run, work / "setup-pip.log")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    paths = ([str(SITE)] if installed["status"] == "ok" else []) + [str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    report["setup"] = {"wheels": installed, "versions": versions(env)}
    print(f"setup: wheels {installed['status']}; {json.dumps(report['setup']['versions'])}",
          flush=True)
    data = start_data(args.dry_run, work, env) if "train" in args.parts else []

    for part in BENCH_PARTS:
        if part.name not in args.parts:
            report["parts"][part.name] = {"status": "skipped", "reason": "not in --parts"}
            continue
        print(f"{part.name}: running (cap {part.dry_cap_s if args.dry_run else part.cap_s:.0f} s,"
              f" {clock.left():.0f} s left)", flush=True)
        report["parts"][part.name] = bench_part(part, args.dry_run, clock, work, env)
        p = report["parts"][part.name]
        print(f"{part.name}: {p['status']} {p.get('summary') or p.get('reason') or ''}",
              flush=True)
        write_out(out, work, {**report, "seconds": round(args.budget - clock.left(), 1)})
    if "train" in args.parts:
        print(f"train: running ({clock.left():.0f} s left)", flush=True)
        report["parts"]["train"] = train_part(args.dry_run, clock, work, out, env, data)
        print(f"train: {report['parts']['train']['status']}", flush=True)
    else:
        report["parts"]["train"] = {"status": "skipped", "reason": "not in --parts"}
    report["seconds"] = round(args.budget - clock.left(), 1)
    write_out(out, work, report)
    print(markdown(report), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
