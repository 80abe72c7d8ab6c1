"""What each part of bench/gpu.py runs, full size (a GPU) or tiny (--dry-run), and the few
figures its summary picks out of the part's JSON. The driver (bench/gpu.py) owns the clock,
the subprocesses and the report; this file owns the commands.

Every command is a list for subprocess, run from the repository root with the driver's
Python; `{work}` in an argument is the driver's scratch folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

GB = 1e9
TARGET_GB = 20.0


@dataclass(frozen=True)
class Part:
    name: str
    what: str
    cap_s: float                  # wall-clock cap on a GPU
    dry_cap_s: float              # and in a --dry-run
    command: Callable[[bool], list]          # dry -> argv (after the Python executable)
    summary: Callable[[dict], dict]          # the part's JSON -> headline figures


# --------------------------------------------------------------------------- FlowRVS, 81 frames

def flowrvs_command(dry: bool) -> list:
    size = ["--frames", "9", "--size", "32", "--window", "5", "--runs", "1", "--warmup", "0",
            "--threads", "1"] if dry else \
        ["--frames", "81", "--height", "480", "--width", "832", "--runs", "2", "--warmup", "1"]
    return ["bench/flowrvs.py", "--preset", "tiny" if dry else "full", "--schedule", "official",
            *size, "--json", "{work}/flowrvs.json"] + (["--device", "cpu"] if dry else [])


def flowrvs_summary(r: dict) -> dict:
    out = {}
    for row in r["results"]:
        way = row["way"]
        out[f"{way}_fps"] = round(row["fps"], 3)
        out[f"{way}_peak_mib"] = round(row["peak_mib"])
        if row.get("phase_peak_mib"):
            dit = row["phase_peak_mib"]["velocity"]
            out[f"{way}_dit_peak_share"] = round(dit / row["peak_mib"], 3)
            out[f"{way}_dit_weights_share"] = round(row["dit_weights_mib"] / row["peak_mib"], 3)
        if "agreement" in row:
            out["mask_agreement"] = round(row["agreement"], 4)
    return out


# --------------------------------------------------------------------------- FlowRVS, windows

def windows_command(dry: bool) -> list:
    size = ["--preset", "tiny", "--device", "cpu", "--size", "32", "--sweep", "5,9",
            "--frames", "21", "--threads", "1"] if dry else \
        ["--preset", "full", "--height", "480", "--width", "832", "--sweep", "17,33,57,81",
         "--frames", "300"]
    return ["bench/flowrvs_windows.py", *size, "--target-gb", str(TARGET_GB),
            "--json", "{work}/flowrvs_windows.json"]


def windows_summary(r: dict) -> dict:
    c = r["long_clip"]
    out = {"frames": c["frames"], "window": c["window"], "windows": c["windows"],
           "fps": round(c["fps"], 3), "peak_gb": round(c["peak_bytes"] / GB, 2),
           "within_20gb": c["within_target"], "loaded_gb": round(r["loaded_bytes"] / GB, 2)}
    if r["fit"]:
        out["mib_per_window_frame"] = round(r["fit"]["bytes_per_window_frame"] / 2 ** 20, 1)
        out["window_memory"] = r["fit"]["code"]
    else:
        out["fit_error"] = r["fit_error"]
    return out


# --------------------------------------------------------------------------- FlowSeg

def flowseg_command(dry: bool) -> list:
    size = ["--preset", "tiny", "--device", "cpu", "--runs", "1", "--warmup", "0",
            "--threads", "1"] if dry else ["--preset", "full", "--runs", "5", "--warmup", "2"]
    return ["bench/flowseg.py", *size, "--json-out", "{work}/flowseg.json"]


def flowseg_summary(r: dict) -> dict:
    (row,) = r["results"]
    v = row["variants"]
    plain = v["plain"]["decoder_ms"]
    return {"latency_ms": round(row["e2e_ms"], 2), "peak_mib": round(row["peak_mib"]),
            "params_b": round(row["params"] / 1e9, 3), "queries": row["queries"],
            "plain_decoder_ms": round(plain, 3),
            "bsf_adds_ms": round(v["+SR+CR"]["decoder_ms"] - plain, 3),
            "bsf_bar_adds_ms": round(v["+BAR"]["decoder_ms"] - plain, 3)}


# --------------------------------------------------------------------------- SAM 2

def sam2_command(dry: bool) -> list:
    size = ["--size", "test", "--device", "cpu", "--frames", "3", "--runs", "1",
            "--warmup", "0", "--threads", "1"] if dry else \
        ["--size", "tiny", "--size", "large", "--frames", "60"]
    return ["bench/sam2_sizes.py", *size, "--json", "{work}/sam2.json"]


def sam2_summary(r: dict) -> dict:
    out = {"engine_present": r["engine_present"]}
    for row in r["results"]:
        s = row["size"]
        out[f"{s}_embed_ms"] = round(row["embed_ms"], 2)
        out[f"{s}_click_ms"] = round(row["click_ms"], 2)
        out[f"{s}_track_fps"] = round(row["track_fps"], 2)
    return out


BENCH_PARTS = (
    Part("flowrvs", "FlowRVS full size (Wan2.1-T2V-1.3B layout, random, bf16): 81 frames at "
         "480x832, one step, the release's way beside ours", 150, 150, flowrvs_command,
         flowrvs_summary),
    Part("flowrvs-windows", "FlowRVS: memory per window frame (fit for "
         "engine/flowrvs/memory.py) and a 300-frame clip in windows under 20 GB", 120, 120,
         windows_command, windows_summary),
    Part("flowseg", "FlowSeg full size (SigLIP-so400m, SAM ViT-L, Qwen3-4B, 200 queries, "
         "random, bf16): latency per image; BSF and BAR over the plain decoder", 110, 120,
         flowseg_command, flowseg_summary),
    Part("sam2", "SAM 2.1 hiera-tiny and hiera-large (random, bf16): embedding, click, "
         "tracking frames/s at 480p", 90, 120, sam2_command, sam2_summary),
)


# --------------------------------------------------------------------------- demo weights

@dataclass(frozen=True)
class Recipe:
    """One demo model's training on the GPU: data, then one trainer run with a time limit."""
    name: str                     # also the archive's name: <name>.tar.gz
    data: list                    # argv writing the training data into {data}
    train: list                   # argv of the trainer; {data}, {run} and {seconds} filled in
    export_s: float               # GPU: kept back from the cap for the trainer's final save
    notes: str


def recipes(dry: bool) -> tuple:
    if dry:
        video = ["-m", "engine.demo_world", "video", "--seed", "0", "--count", "3"]
        image = ["-m", "engine.demo_world", "image", "--seed", "0", "--count", "4"]
        rvs_size = ["--batch-size", "2", "--threads", "1", "--log-every", "1"]
        seg_size = ["--batch-size", "2", "--points", "64", "--threads", "1", "--log-every", "1",
                    "--steps", "50", "--warmup", "1"]
    else:
        video = ["-m", "engine.demo_world", "video", "--seed", "0", "--count", "3000"]
        image = ["-m", "engine.demo_world", "image", "--seed", "0", "--count", "8000"]
        rvs_size = ["--batch-size", "256", "--log-every", "100"]
        seg_size = ["--batch-size", "64", "--points", "1024", "--log-every", "25",
                    "--steps", "4000", "--warmup", "50"]
    return (
        Recipe("flowrvs-demo", [*video, "--out", "{data}"],
               ["-m", "engine.flowrvs.train", "--data", "{data}", "--out", "{run}", "--tiny",
                "--stage", "flow", "--resume-from-pipeline", "assets/flowrvs-demo",
                "--num-frames", "9", "--precompute-latents", "--lr", "1e-3",
                "--ema-decay", "0.998", "--bbs-p", "0.5", "--timestep-bias", "4",
                "--max-steps", "1000000", "--save-every", "1000000", "--time-limit",
                "{seconds}", *rvs_size],
               export_s=40,
               notes="the shipped demo fine-tuned (its VAE and tokenizer kept), half of each "
                     "batch at t=1000 and the rest leaned toward it (--timestep-bias 4)"),
        Recipe("flowseg-demo", [*image, "--out", "{data}"],
               ["-m", "engine.flowseg.train", "--data", "{data}", "--out", "{run}",
                "--init", "assets/flowseg-demo", "--query-position", "--stage", "joint",
                "--lr", "3e-4", "--save-every", "1000000", "--time-limit", "{seconds}",
                *seg_size],
               export_s=30,
               notes="the shipped demo fine-tuned with the query position signal added "
                     "(--query-position; starts as a no-op), joint stage"),
    )


def train_log_summary(log_text: str) -> dict:
    """The last logged step and loss of a trainer's output (either trainer's format)."""
    import json
    import re
    step: Optional[int] = None
    loss: Optional[float] = None
    for line in log_text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"step"' in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            step = record.get("step", step)
            loss = record.get("loss", record.get("total", loss))     # flowseg logs "total"
            continue
        m = re.search(r"step (\d+) loss ([\d.eE+-]+)", line)
        if m:
            step, loss = int(m.group(1)), float(m.group(2))
    return {"last_step": step, "last_loss": loss}
