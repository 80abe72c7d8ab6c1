"""Batch pre-annotation: run an engine on every expression that has no masks yet.

`launch.py annotate --project P --engine E` goes through the project in media order with a
progress bar. Each expression is saved in one transaction (one revision, one undo step), the
way the studio's Segment button saves it: source = the engine's name, manual frames kept. So
an interrupted run loses at most the expressions in flight, and running the command again
resumes: expressions that have masks are skipped.

Which expressions are pending: those none of whose objects has a mask on any frame, and whose
status is not done or reviewed (a finished expression without masks says the object is absent;
the engine does not get to overrule that). An engine that finds nothing leaves nothing to save,
so such an expression stays pending and is tried again on the next run (the summary counts
them).

With `ray_address` the model runs in Ray actors: one per GPU of the cluster, or, where the
cluster has no GPU, `cpu_actors` CPU actors (default 1). The driver decodes the frames and
streams them to the actors one media at a time (put once in the object store, shared by that
media's expressions; a few expressions in flight per actor), and writes every result through
the project's one store in this process: workers never open the project. `ray_address="local"`
starts a local Ray instance for the run; any other value is passed to ray.init(address=...)
("auto", "ray://host:10001", "host:6379"), and the repository is shipped to the cluster as the
job's working_dir.
"""
from __future__ import annotations

import collections
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import engine
from app.commands.console import progress_bar
from app.errors import UserError
from app.project.store import FINISHED, ProjectStore
from app.studio.studio import Studio
from engine.plugins import import_engine_modules

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT_PER_ACTOR = 2
# Never shipped to a Ray cluster with the code.
RAY_EXCLUDES = [".venv", ".git", "**/__pycache__", "*.sqlite", "*.sqlite-*", "*_media", "docs", ".pytest_cache"]


class BatchError(UserError):
    """The run stopped; the message says why and that running again resumes."""


@dataclass
class Summary:
    engine: str
    mode: str
    pending: int = 0
    annotated: int = 0
    empty: int = 0
    frames: int = 0
    skipped: dict = field(default_factory=dict)
    actors: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0    # Ray: connecting and starting the actors (models load on first use)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        rate = self.annotated / self.seconds if self.seconds else 0.0
        lines = [f"{self.engine} ({self.mode}{f', {self.actors} actor(s)' if self.actors else ''}): "
                 f"annotated {self.annotated} of {self.pending} pending expression(s), {self.frames} frames, "
                 f"in {self.seconds:.1f} s ({rate:.2f} expressions/s)"
                 + (f"; Ray start-up {self.startup_seconds:.1f} s of it" if self.startup_seconds else "")]
        if self.empty:
            lines.append(f"{self.empty} expression(s) came back empty: nothing was saved for them, so the "
                         "next run tries them again")
        for reason, n in self.skipped.items():
            lines.append(f"skipped {n}: {reason}")
        return "\n".join(lines)


def _has_masks(store: ProjectStore, expression_id: int) -> bool:
    return any(store.mask_sources(expression_id, o["id"]) for o in store.list_objects(expression_id))


def pending_expressions(store: ProjectStore, engine_name: str) -> tuple[list[dict], dict]:
    """Expressions to annotate, in media order, and {reason: count} of those skipped."""
    info = engine.engine_info(engine_name)  # UnknownEngineError names the registered ones
    media = {m["id"]: m for m in store.list_media()}
    todo, skipped = [], collections.Counter()
    for expr in store.list_expressions():
        kind = media[expr["media_id"]]["kind"]
        if expr["status"] in FINISHED:
            skipped["marked done or reviewed"] += 1
        elif _has_masks(store, expr["id"]):
            skipped["already have masks"] += 1
        elif kind not in info.kinds:
            skipped[f"{kind}s, which {engine_name} does not segment"] += 1
        else:
            todo.append(expr)
    todo.sort(key=lambda e: (e["media_id"], e["id"]))
    return todo, dict(skipped)


def annotate(studio: Studio, engine_name: str, *, ray_address: Optional[str] = None, cpu_actors: int = 1,
             engine_modules: Sequence[str] = (), engine_paths: Optional[dict] = None,
             device: Optional[str] = None, limit: Optional[int] = None, show_progress: bool = True) -> Summary:
    """Pre-annotate the pending expressions of `studio`'s project. Raises UnknownEngineError
    before doing anything, BatchError when the engine fails (what was saved stays saved).

    In-process the Studio's own engine service runs the model (its device and paths); the
    Ray actors get `engine_modules` (imported in each worker, registering plugin engines),
    `engine_paths` and `device` instead."""
    todo, skipped = pending_expressions(studio.store, engine_name)
    if limit is not None:
        todo = todo[:limit]
    summary = Summary(engine_name, "in-process" if ray_address is None else f"ray {ray_address}",
                      pending=len(todo), skipped=skipped)
    t0 = time.perf_counter()
    try:
        with progress_bar(len(todo), f"annotate {engine_name}", show_progress) as bar:
            if not todo:
                pass  # nothing to do: no Ray cluster to start or reach
            elif ray_address is None:
                _run_in_process(studio, engine_name, todo, summary, bar)
            else:
                _run_on_ray(studio, engine_name, todo, summary, bar, ray_address, cpu_actors,
                            list(engine_modules), engine_paths or {}, device)
    finally:
        summary.seconds = time.perf_counter() - t0
    return summary


def _stopped(summary: Summary, expr: dict, error: BaseException) -> BatchError:
    return BatchError(f"{summary.engine} failed on expression {expr['id']} ({expr['text']!r}): "
                      f"{type(error).__name__}: {error}. {summary.annotated} expression(s) were annotated and "
                      "saved; run the same command again to resume with the rest")


def _count(store: ProjectStore, summary: Summary, expr: dict, frames: int) -> None:
    summary.frames += int(frames)
    if _has_masks(store, expr["id"]):
        summary.annotated += 1
    else:  # the engine found nothing: nothing saved, still pending
        summary.empty += 1


def _run_in_process(studio: Studio, engine_name: str, todo: list[dict], summary: Summary, bar) -> None:
    store = studio.store
    for expr in todo:
        if _has_masks(store, expr["id"]):  # annotated meanwhile (the app may be open on the project)
            bar.update(1)
            continue
        try:
            result = studio.segment(expr["id"], engine_name)  # the verb the app's Segment button uses
        except (engine.Cancelled, KeyboardInterrupt):
            raise
        except Exception as e:
            raise _stopped(summary, expr, e) from e
        _count(store, summary, expr, result["frames"])
        bar.update(1)


# -- Ray -------------------------------------------------------------------------------------

class EngineWorker:
    """A Ray actor holding one engine (one model) on its device. Frames in, packed masks out."""

    def __init__(self, engine_name: str, modules: list[str], device: Optional[str], paths: dict):
        import_engine_modules(modules)  # register the same plugin engines in this worker
        self.engine_name = engine_name
        self.service = engine.EngineService(device=device, paths=paths)

    def describe(self) -> dict:
        return {"pid": os.getpid(), "device": self.service.device}

    def segment(self, kind: str, frames: np.ndarray, text: str):
        frames = np.array(frames)  # the object store's copy is read-only; in-process frames are not
        masks = self.service.run(self.engine_name, kind, frames, text).masks
        return np.packbits(masks, axis=-1), masks.shape


def _unpack(packed: np.ndarray, shape: tuple) -> np.ndarray:
    return np.unpackbits(packed, axis=-1, count=shape[-1]).astype(bool).reshape(shape)


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise BatchError("--ray needs the ray package: pip install -r requirements.txt (it pins ray); "
                         f"import failed: {e}") from e
    return ray


def _connect(ray, address: str, cpu_actors: int) -> bool:
    """ray.init for `address`; True if this call connected (so the run disconnects at the end)."""
    if ray.is_initialized():
        return False
    if address == "local":
        # Workers run on this machine: give them this repository and the caller's folder to
        # import from (plugin engine modules may live in either).
        paths = [str(ROOT), os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        pythonpath = os.pathsep.join(p for p in dict.fromkeys(paths) if p)
        ray.init(num_cpus=max(os.cpu_count() or 1, cpu_actors), include_dashboard=False,
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, runtime_env={"working_dir": str(ROOT), "excludes": RAY_EXCLUDES})
        except Exception as e:
            raise BatchError(
                f"could not connect to the Ray cluster at {address}: {type(e).__name__}: {e}. Check the address "
                "(`ray start --head` prints it; 'auto' finds a cluster started on this machine; 'local' starts "
                "one for this run). Clusters started by `ray start` use token authentication: set "
                "RAY_AUTH_MODE=token here, with the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token") from e
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds where nothing listens at host:port (ray.init retries for many minutes)."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise BatchError(f"nothing answers at {hostport} ({e}); start the cluster's head with "
                         "`ray start --head` and pass the address it prints, 'auto' for a cluster on this "
                         "machine, or 'local' to start one for this run") from e


def _run_on_ray(studio: Studio, engine_name: str, todo: list[dict], summary: Summary, bar, address: str,
                cpu_actors: int, modules: list[str], paths: dict, device: Optional[str]) -> None:
    if cpu_actors < 1:
        raise BatchError(f"cpu_actors must be at least 1, got {cpu_actors}")
    ray = _import_ray()
    t0 = time.perf_counter()
    connected = _connect(ray, address, cpu_actors)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        worker = ray.remote(EngineWorker)
        if gpus and not str(device or "").startswith("cpu"):
            # One model per GPU. Ray sets CUDA_VISIBLE_DEVICES, so each actor's own GPU is "cuda"
            # (a --device index such as cuda:1 means nothing inside an actor).
            actors = [worker.options(num_gpus=1, num_cpus=1).remote(engine_name, modules, "cuda", paths)
                      for _ in range(gpus)]
        else:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if cpus < cpu_actors:
                raise BatchError(f"the Ray cluster has {cpus} CPU(s) and no GPU: it cannot hold {cpu_actors} "
                                 f"CPU actors of 1 CPU each; pass --cpu-actors {max(cpus, 1)} or fewer")
            actors = [worker.options(num_cpus=1).remote(engine_name, modules, device or "cpu", paths)
                      for _ in range(cpu_actors)]
        summary.actors = len(actors)
        try:
            ray.get([a.describe.remote() for a in actors])  # fail early: plugin import, bad device
        except Exception as e:
            raise BatchError(f"the Ray workers could not start engine {engine_name}: {e}") from e
        summary.startup_seconds = time.perf_counter() - t0
        _schedule(ray, studio, engine_name, todo, summary, bar, actors)
    finally:
        if connected:
            ray.shutdown()


def _schedule(ray, studio: Studio, engine_name: str, todo: list[dict], summary: Summary, bar, actors) -> None:
    store = studio.store
    queue = collections.deque(todo)
    in_flight: dict = {}            # ObjectRef -> (expression, actor index)
    load = [0] * len(actors)
    frames_ref = (None, None)       # (media id, ObjectRef of its frames), shared by its expressions
    failure = None                  # the first failed expression: submit nothing more, save what finished
    while (queue and failure is None) or in_flight:
        while queue and failure is None and len(in_flight) < IN_FLIGHT_PER_ACTOR * len(actors):
            expr = queue.popleft()
            if _has_masks(store, expr["id"]):  # annotated meanwhile
                bar.update(1)
                continue
            media = store.get_media(expr["media_id"])
            if frames_ref[0] != media["id"]:
                try:
                    frames = studio.media_frames(media["id"])
                except Exception as e:  # a damaged or missing media file
                    failure = (expr, e)
                    break
                frames_ref = (media["id"], ray.put(frames))
                del frames
            a = load.index(min(load))
            ref = actors[a].segment.remote(media["kind"], frames_ref[1], expr["text"])
            in_flight[ref] = (expr, a)
            load[a] += 1
        if not in_flight:
            break
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        expr, a = in_flight.pop(ref)
        load[a] -= 1
        try:
            packed, shape = ray.get(ref)
        except Exception as e:
            failure = failure or (expr, getattr(e, "cause", None) or e)
            continue
        masks = _unpack(packed, shape)
        studio.save_proposal(expr["id"], engine_name, masks)  # the one store writer: this process
        _count(store, summary, expr, len(masks))
        bar.update(1)
    if failure is not None:
        raise _stopped(summary, *failure)
