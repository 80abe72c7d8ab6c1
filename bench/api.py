#!/usr/bin/env python3
"""Scripting API benchmark: /save_mask and /get_mask at 1080p through gradio_client, against
the real app started as a subprocess (`launch.py`), with 1 and with 8 clients at once.

    python bench/api.py            # 1080p, 30 calls per client and endpoint
    python bench/api.py --quick    # a smoke run: 320x180, 4 calls per client

Target: under 80 ms median per call for one client. Each client saves a different mask on its
own expression (no stale-revision refusals), then reads it back; every mask read back is
checked against the one saved.

Two kinds of client are measured: gradio_client as constructed by default, which builds a new
TLS context (loading the CA bundle) for every HTTP request, even to http://, and one given a
single shared context (`ssl_verify=ssl.create_default_context()`, still verifying), as
scripts/api_example.py and the README do. Besides wall time, the CPU time spent per call by the
server process and by the clients is printed: on a shared machine it is the steadier figure.
"""
from __future__ import annotations

import argparse
import os
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench.live_app import LiveApp
from bench.studio import blob, machine, ms, verdict, write_video

TARGET_MS = 80.0


def make_client(url: str, shared_tls: bool, downloads: Path):
    from gradio_client import Client
    patient = {"timeout": 120}  # httpx's 5 s default fails calls on a machine shared with other jobs
    tls = {"ssl_verify": ssl.create_default_context()} if shared_tls else {}
    return Client(url, verbose=False, httpx_kwargs=patient, download_files=downloads, **tls)


def client_run(url: str, expression_id: int, calls: int, size: tuple[int, int], folder: Path, seed: int,
               out: dict, shared_tls: bool) -> None:
    from gradio_client import handle_file
    client = make_client(url, shared_tls, folder)
    width, height = size
    saves, gets = [], []
    for i in range(calls):
        mask = blob(seed * 1000 + i, height, width, 0.3)
        png = folder / f"mask-{seed}-{i}.png"
        cv2.imwrite(str(png), mask.astype(np.uint8) * 255)
        t0 = time.perf_counter()
        client.predict(expression_id, 0, handle_file(png), api_name="/save_mask")
        t1 = time.perf_counter()
        got = client.predict(expression_id, 0, api_name="/get_mask")
        t2 = time.perf_counter()
        if not np.array_equal(cv2.imread(got, cv2.IMREAD_GRAYSCALE) > 0, mask):
            raise AssertionError(f"client {seed}: the mask read back differs from the one saved (call {i})")
        saves.append(t1 - t0)
        gets.append(t2 - t1)
    out[seed] = (saves, gets)


def run(url: str, expressions: list[int], clients: int, calls: int, size, folder: Path,
        shared_tls: bool) -> tuple[list, list]:
    out: dict = {}
    threads = [threading.Thread(target=client_run,
                                args=(url, expressions[c], calls, size, folder, c, out, shared_tls))
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != clients:
        raise RuntimeError(f"{clients - len(out)} of {clients} clients failed (see above)")
    return [s for saves, _ in out.values() for s in saves], [g for _, gets in out.values() for g in gets]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a figure other jobs do not inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small frames, few calls: a smoke run")
    p.add_argument("--calls", type=int, default=None, help="calls per client and endpoint")
    args = p.parse_args(argv)
    size, calls = ((320, 180), 4) if args.quick else ((1920, 1080), 30)
    calls = args.calls or calls
    print(f"FlowLabel API benchmark ({'quick' if args.quick else 'full'}): {size[0]}x{size[1]}, {calls} calls "
          "per client and endpoint")
    print(f"machine: {machine()}")
    from gradio_client import handle_file
    with tempfile.TemporaryDirectory(prefix="flowlabel-bench-api-") as tmp:
        # gradio_client stages every download in a new folder of the temp dir (left there,
        # empty): keep them, and the downloads, in this folder, which goes at the end.
        tempfile.tempdir, tmp = tmp, Path(tmp)
        video = write_video(tmp / "clip.mp4", 2, size, detail=False)
        app = LiveApp(tmp / "bench.sqlite", env={"TMPDIR": str(tmp)})  # Gradio's cache goes with tmp too
        try:
            client = make_client(app.url, shared_tls=True, downloads=tmp)
            media = client.predict(handle_file(video), api_name="/add_media")["media_id"]
            expressions = [client.predict(media, f"object {c}", api_name="/add_expression")["expression_id"]
                           for c in range(8)]
            for shared_tls in (True, False):
                kind = "shared TLS context" if shared_tls else "default client"
                for clients in (1, 8):
                    run(app.url, expressions, clients, 2, size, tmp, shared_tls)  # warm up
                    cpu0 = cpu_seconds(app.proc.pid), time.process_time()
                    saves, gets = run(app.url, expressions, clients, calls, size, tmp, shared_tls)
                    server_cpu = (cpu_seconds(app.proc.pid) - cpu0[0]) / (len(saves) + len(gets)) * 1e3
                    client_cpu = (time.process_time() - cpu0[1]) / (len(saves) + len(gets)) * 1e3
                    for name, times in (("save_mask", saves), ("get_mask", gets)):
                        median, p95 = ms(times)
                        target = f" [{verdict(median < TARGET_MS)} < {TARGET_MS:.0f} ms]" if clients == 1 else ""
                        print(f"{name} {clients} client{'s' if clients > 1 else ''}, {kind}: median {median:.1f} ms "
                              f"p95 {p95:.1f} ms over {len(times)} calls{target}", flush=True)
                    print(f"  CPU per call, {clients} client{'s' if clients > 1 else ''}, {kind}: server "
                          f"{server_cpu:.1f} ms, client {client_cpu:.1f} ms", flush=True)
        finally:
            app.stop()
            tempfile.tempdir = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
