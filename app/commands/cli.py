"""Command line: `python launch.py` serves the studio; `export ...` and `import ...` move datasets;
`evaluate ...` scores an engine against the corrected masks; `annotate ...` pre-annotates in batch;
`render ...` writes overlay clips to share.
`models list|download` shows and fetches engines' weights.
`media|expressions|objects|trash ...` rename, delete (to a trash) and restore (app/commands/manage.py).

Plugin engines: `--engine-module M` (repeatable) or FLOWLABEL_ENGINE_MODULES=M1,M2 imports each
module before anything else runs; a module registers its engines with engine.register_engine.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import engine
from app.commands import manage
from app.errors import USER_ERRORS, UsageError, exit_code
from engine.plugins import (
    ENGINE_MODULES_ENV,
    import_engine_modules,
    requested_modules,
)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ENGINE_MODULE_HELP = (f"import this Python module (dotted name, or a .py file) before starting; it registers "
                      f"its own engines with engine.register_engine. Repeatable; also env {ENGINE_MODULES_ENV} "
                      "(comma-separated)")
# The names of app.formats.FORMATS, kept here so that --help does not load the format readers.
FORMAT_NAMES = ("coco", "coco-polygons", "refcoco", "ytvos", "mevis")
FORMATS_HELP = ("coco: COCO JSON, RLE masks (exact); coco-polygons: COCO JSON with polygons (lossy: holes "
                "are filled); refcoco: instances.json + refs(unc).p + refs.json + images/; ytvos: "
                "Ref-YouTube-VOS/Ref-DAVIS17 meta_expressions.json + JPEGImages/ + Annotations/ palette PNGs; "
                "mevis: meta_expressions.json + mask_dict.json + JPEGImages/")


def default_project() -> Path:
    """The user's data folder: $FLOWLABEL_HOME, else the platform's usual place."""
    if os.environ.get("FLOWLABEL_HOME"):
        base = Path(os.environ["FLOWLABEL_HOME"])
    elif sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home())) / "FlowLabel"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "FlowLabel"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "flowlabel"
    return base / "default.sqlite"


def parser() -> argparse.ArgumentParser:
    project_help = (f"project SQLite file (created if missing); imported media are copied to "
                    f"<name>_media/ beside it. Default: {default_project()}")
    p = argparse.ArgumentParser(
        prog="launch.py",
        description="FlowLabel: annotate referring expressions with masks. With no command, starts the studio.")
    p.add_argument("--project", type=Path, default=None, help=project_help)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0 for your network)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    p.add_argument("--auth-file", default=None, metavar="FILE",
                   help="require a login: user:password lines (also env FLOWLABEL_AUTH_FILE; one user can come "
                        "from env FLOWLABEL_AUTH=user:password). Needed to serve an address other than loopback")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve a network address without a login (anyone reaching the port can read and change "
                        "the project)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a server folder the page may import datasets from, besides the project's folder "
                        "(repeatable; also env FLOWLABEL_ALLOW_PATHS, os.pathsep-separated)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name to answer besides localhost and IP addresses, e.g. the name a proxy uses "
                        "(repeatable; '*' answers any; also env FLOWLABEL_ALLOW_HOSTS, comma-separated)")
    p.add_argument("--device", default=None,
                   help="where engines run: cpu, cuda, cuda:1 ... (default: cuda when available, else cpu)")
    p.add_argument("--no-demo", action="store_true",
                   help="do not add the demo media from assets/ to a new, empty project")
    p.add_argument("--engine-module", action="append", default=[], metavar="MODULE", help=ENGINE_MODULE_HELP)
    # Model locations: the engines' own tables (engine.ModelPath), flag else environment variable.
    for eng, key, where in engine.model_path_options():
        p.add_argument(where.flag, dest=f"{eng}__{key}", default=os.environ.get(where.env),
                       help=f"{where.help} (env {where.env})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    exp = sub.add_parser("export", help="export the project's annotations")
    # SUPPRESS: `--project P export` and `export --project P` both work; neither resets the other.
    exp.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=project_help)
    exp.add_argument("--format", choices=FORMAT_NAMES, default="coco",
                     help=f"export format (default coco). {FORMATS_HELP}")
    exp.add_argument("--out", type=Path, required=True,
                     help="file to write (coco, coco-polygons) or folder (refcoco, ytvos, mevis: new, empty, or "
                          "an earlier export, which is replaced)")
    imp = sub.add_parser("import", help="import a dataset into the project (all or nothing)")
    imp.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=project_help)
    imp.add_argument("--format", choices=FORMAT_NAMES, required=True, help=f"dataset format. {FORMATS_HELP}")
    imp.add_argument("--media-root", type=Path, default=None,
                     help="folder holding the images (coco, refcoco: default <src>/images or the json's "
                          "folder) or JPEGImages/ and Annotations/ (ytvos, mevis: default the json's folder)")
    imp.add_argument("src", type=Path, help="the dataset: its JSON file or its folder")
    ev = sub.add_parser("evaluate", help="score an engine against the project's corrected masks (read-only): "
                                         "J&F for videos, cIoU/gIoU for images",
                        description="Ground truth: every frame of expressions marked done/reviewed or whose masks "
                                    "all come from an imported dataset; otherwise only frames with manual or "
                                    "imported masks. Nothing is written into the project.")
    _engine_args(ev, project_help)
    ev.add_argument("--json", type=Path, default=None,
                    help="where to write the report (default: <project>-eval-<engine>.json beside the project)")
    ann = sub.add_parser("annotate", help="pre-annotate every expression that has no masks yet (resumable: "
                                          "run again after an interruption)",
                         description="Runs the engine on every expression none of whose objects has a mask and "
                                     "that is not marked done/reviewed, saving each in one transaction (manual "
                                     "frames are never overwritten). Run it again to resume after an interruption.")
    _engine_args(ann, project_help)
    ann.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="run the engine on a Ray cluster (ray.init address: auto, host:6379, ray://host:10001), "
                          "or 'local' to start one on this machine; one model actor per GPU")
    ann.add_argument("--cpu-actors", type=int, default=1,
                     help="with --ray on a cluster without GPUs: how many CPU model actors (default 1)")
    ann.add_argument("--limit", type=int, default=None, help="annotate at most this many expressions")
    _render_args(sub, project_help)
    manage.add_parsers(sub, project_help)
    mod = sub.add_parser("models", help="each engine's weights: list what is here, download what is not",
                         description="Weights come from the model flags / variables (a folder, a Hugging Face "
                                     "cache entry or a repo id already in the cache). Nothing downloads implicitly.")
    mod_sub = mod.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mod_sub.add_parser("list", help="ready / missing (which files) / where looked, per engine")
    dl = mod_sub.add_parser("download", help="fetch weights into the Hugging Face cache (resumable, with progress)")
    dl.add_argument("name", help="a known name (sam2.1-tiny, sam2.1-small, sam2.1-base-plus, sam2.1-large, edgetam, "
                                 "wan2.1-t2v-1.3b, flowrvs, sam3) or a repo id")
    chk = sub.add_parser("check", help="is the project file sound? SQLite's integrity and foreign-key checks "
                                       "(read-only), and the backups there are to restore")
    chk.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=project_help)
    return p


def _render_args(sub, project_help: str) -> None:
    ren = sub.add_parser("render", help="write an overlay clip (mp4, gif, webp) or picture (png) of an expression, "
                                        "or of every expression of a media; --compare puts mask sources side by side",
                         description="Each object's mask in its own colour with its boundary, the expression as a "
                                     "caption. Mask sources for --compare: mask (the corrected masks), proposal (the "
                                     "latest proposal), or a proposal's source name (an engine's name, propagated).")
    ren.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=project_help)
    which = ren.add_mutually_exclusive_group(required=True)
    which.add_argument("--expression", type=int, metavar="ID", help="render this expression")
    which.add_argument("--media", type=int, metavar="ID", help="render every expression of this media")
    ren.add_argument("--format", choices=("mp4", "gif", "webp", "png"), default=None,
                     help="default: the --out file's extension, else mp4 for videos and png for images")
    ren.add_argument("--frames", metavar="A:B", default=None, help="frames A to B-1 (A:, :B, or one frame A); "
                                                                   "default all")
    ren.add_argument("--scale", type=float, default=1.0, help="size factor, e.g. 0.5 (default 1)")
    ren.add_argument("--fps", type=float, default=None,
                     help="frame rate; lower than the video's drops frames evenly (default: the video's)")
    ren.add_argument("--layers", choices=("image+mask", "mask", "image"), default="image+mask",
                     help="image+mask (default), mask (the masks alone, on black) or image (the frames alone)")
    ren.add_argument("--compare", nargs="+", metavar="SRC", default=None,
                     help="two or more mask sources side by side: mask, proposal, or a proposal source name")
    ren.add_argument("--out", type=Path, required=True, help="file to write")


def _engine_args(sub: argparse.ArgumentParser, project_help: str) -> None:
    # SUPPRESS: options given before the command are not reset by the subcommand's defaults.
    sub.add_argument("--project", type=Path, default=argparse.SUPPRESS,
                     help=f"an existing project SQLite file. Default: {default_project()}")
    sub.add_argument("--engine", required=True, help="registered engine name (flowrvs, sam3, ... or a plugin's); "
                                                     "evaluate takes several, comma-separated, and compares them")
    sub.add_argument("--device", default=argparse.SUPPRESS, help="cpu, cuda, cuda:1 ... (default: cuda when "
                                                                  "available, else cpu)")
    sub.add_argument("--engine-module", dest="engine_module_sub", action="append", default=[],
                     metavar="MODULE", help=ENGINE_MODULE_HELP)


def engine_modules(args) -> list[str]:
    """Plugin modules from the environment, then the flags (before and after the command)."""
    return requested_modules(list(getattr(args, "engine_module", None) or [])
                             + list(getattr(args, "engine_module_sub", None) or []))


def engine_paths(args) -> dict:
    paths: dict = {}
    for eng, key, _ in engine.model_path_options():
        value = getattr(args, f"{eng}__{key}", None)
        if value:
            paths.setdefault(eng, {})[key] = value
    return paths


def seed_demo(studio, wanted: bool = True) -> None:
    """A new project opens on something to try: the demo media with example expressions. The
    choice is made once, when the project is new, and recorded in it: a project made with
    --no-demo never gets them, and demo media the user deleted do not come back."""
    import json

    from app.project.trash import list_trash
    manifest = ASSETS / "demo" / "demo.json"
    store = studio.store
    if store.get_setting("demo_seeded") is not None:
        return
    new = not store.list_media() and not any(i["kind"] == "media" for i in list_trash(store))
    store.set_setting("demo_seeded", bool(new and wanted and manifest.exists()))
    if not store.get_setting("demo_seeded"):
        return
    for item in json.loads(manifest.read_text()):
        media = studio.add_media(ASSETS / "demo" / item["file"])[0]
        for text in item["expressions"]:
            studio.store.add_expression(media["id"], text)


def entry() -> None:
    """The `flowlabel` console command (pyproject.toml): the same as `python launch.py`."""
    sys.exit(main())


def main(argv=None) -> int:
    """The CLI's one translation of user errors: "error: <message>" and the error's exit status."""
    args = parser().parse_args(argv)
    project = args.project or default_project()
    try:
        import_engine_modules(engine_modules(args))
        if args.command == "models":
            return models(args)
        if args.command in manage.COMMANDS:
            return manage.run(project, args, _locked)
        return COMMANDS.get(args.command, serve)(project, args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return exit_code(e)


def _locked(project: Path, purpose: str):
    """The project's writer lock; ProjectLockedError (exit status 3) names who holds it."""
    from app.project.lock import ProjectLock
    return ProjectLock(project, purpose).acquire()


def export(project: Path, args) -> int:
    from app.formats.coco_build import write_coco
    from app.project.store import ProjectStore
    _require_project(project)
    if args.format != "coco":
        from app import formats
        with ProjectStore(project, readonly=True) as store:
            report = formats.get(args.format).export(store, args.out)
        print(report.summary())
        return 0
    with ProjectStore(project, readonly=True) as store:
        out = write_coco(store, args.out)
        data_count = sum(1 for _ in store.iter_masks())
    print(f"wrote {out} ({data_count} masks)")
    return 0


def import_(project: Path, args) -> int:
    from app import formats
    from app.project.store import ProjectStore
    if not args.src.exists():
        raise UsageError(f"{args.src} does not exist; pass the dataset's JSON file or folder")
    new = not Path(project).exists()
    lock = _locked(project, "import")
    try:
        with lock, ProjectStore(project) as store:
            report = formats.get(args.format).import_(store, args.src, media_root=args.media_root)
    except formats.FormatError:
        if new:  # a failed import leaves no empty project behind either
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store.path}{suffix}").unlink(missing_ok=True)
            if store.media_dir.is_dir() and not any(store.media_dir.iterdir()):
                store.media_dir.rmdir()
            lock.path.unlink(missing_ok=True)
        raise
    print(f"project: {store.path}")
    print(report.summary())
    return 0


def serve(project: Path, args) -> int:
    from app.studio.exposure import Exposure
    exposure = Exposure.decide(args.host, args.port, project, auth_file=args.auth_file,
                               allow_paths=args.allow_path, allow_hosts=args.allow_host,
                               insecure_no_auth=args.insecure_no_auth)
    lock = _locked(project, "studio")  # held until this process ends
    from app import ui  # Gradio takes seconds to import: refuse before that
    from app.serve import tempfiles
    from app.studio.studio import Studio
    tempfiles.sweep()  # what crashed studios left in the temp folder
    studio = Studio(project, device=args.device, engine_paths=engine_paths(args), import_roots=exposure.roots)
    seed_demo(studio, wanted=not args.no_demo)
    from app.project import backups
    rolling = backups.Rolling(studio.store)  # one now, then every 10 minutes, the last 5 kept
    demo = ui.build(studio)
    print(f"FlowLabel project: {studio.store.path}\n{exposure.summary()}", flush=True)
    signal.signal(signal.SIGTERM, _stop_serving)  # a clean stop: temp folders go, as on Ctrl+C
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, show_error=True, **ui.launch_kwargs(),
        **exposure.launch_kwargs())
    rolling.stop()
    lock.release()
    return 0


def models(args) -> int:
    from engine import models as catalog
    if args.models_command == "list":
        print(catalog.format_report(catalog.report(engine_paths(args))))
        return 0
    print(f"ready: {catalog.download(args.name)}")
    return 0


def _stop_serving(signum, frame):
    raise KeyboardInterrupt  # Gradio closes its server on it; then atexit runs


def check(project: Path, args) -> int:
    from app.project import backups, opening
    from app.project.store import ProjectStore
    _require_project(project)
    ProjectStore(project, readonly=True).close()  # recognised as a project, this version can read it
    problems = opening.integrity_problems(Path(project))
    for problem in problems:
        print(f"problem: {problem}")
    kept = backups.listed(Path(project))
    print(f"{project}: " + ("ok" if not problems else f"{len(problems)} problem(s); restore a backup"))
    print(f"backups ({len(kept)}): " + (", ".join(p.name for p in kept[-3:]) if kept else "none yet") +
          (f" in {kept[0].parent}" if kept else ""))
    return 1 if problems else 0


def _require_project(project: Path) -> None:
    if not Path(project).exists():
        raise UsageError(f"no project at {project}; pass --project with the path of an existing project file")


def evaluate(project: Path, args) -> int:
    from app.commands import evaluate as ev
    from app.studio.studio import Studio
    _require_project(project)
    names = [n.strip() for n in args.engine.split(",") if n.strip()]
    if len(names) > 1 and args.json:
        raise UsageError("--json names one report; with several engines each report goes to its default path")
    reports, failed = [], {}
    studio = Studio(project, device=args.device, engine_paths=engine_paths(args))
    try:
        for name in names:
            try:
                reports.append(ev.evaluate(studio, name))
            except (ev.EvaluationError, engine.EngineNotConfigured) as e:
                if len(names) == 1:
                    raise
                failed[name] = str(e)  # the comparison goes on without it, and says why
    finally:
        studio.close()
    for report in reports:
        out = ev.write_json(report, args.json or ev.default_json_path(studio.store.path, report["engine"]))
        print(ev.format_table(report))
        print(f"\nwrote {out}\n")
    if len(names) > 1:
        print(compare_table(reports, failed))
    return 0 if reports else 1


def compare_table(reports: list[dict], failed: dict) -> str:
    """One line per engine: the overall scores side by side, on the same ground truth."""
    def fmt(value) -> str:
        return "-" if value is None else f"{value:.3f}"
    lines = ["comparison (same ground truth):", f"{'engine':<16} {'videos J&F':>11} {'images cIoU':>12} {'gIoU':>7}"]
    for r in reports:
        video, image = (r["video"] or {}).get("overall", {}), (r["image"] or {}).get("overall", {})
        lines.append(f"{r['engine']:<16} {fmt(video.get('J&F')):>11} {fmt(image.get('cIoU')):>12} "
                     f"{fmt(image.get('gIoU')):>7}")
    lines += [f"{name:<16} not run: {why}" for name, why in failed.items()]
    return "\n".join(lines)


def annotate(project: Path, args) -> int:
    from app.commands import batch
    from app.studio.studio import Studio
    _require_project(project)
    lock = _locked(project, "annotate")
    studio = Studio(project, device=args.device, engine_paths=engine_paths(args))
    try:
        summary = batch.annotate(studio, args.engine, ray_address=args.ray, cpu_actors=args.cpu_actors,
                                 engine_modules=engine_modules(args), engine_paths=engine_paths(args),
                                 device=args.device, limit=args.limit)
    except KeyboardInterrupt:
        print("interrupted: what was saved stays saved; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        studio.close()
        lock.release()
    print(summary.text())
    return 0


def render(project: Path, args) -> int:
    import engine
    from app.studio.studio import Studio
    _require_project(project)
    studio = Studio(project, readonly=True)
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth > shown[0]:
            shown[0] = tenth
            print(f"\rrendering: {done}/{total} frames", end="", file=sys.stderr, flush=True)
    try:
        result = studio.render_clip(args.out, expression_id=args.expression, media_id=args.media, fmt=args.format,
                                    frames=args.frames, scale=args.scale, fps=args.fps, layers=args.layers,
                                    compare=args.compare, progress=progress)
    except USER_ERRORS:
        if shown[0] >= 0:
            print(file=sys.stderr)  # end the progress line before main prints the error
        raise
    except (KeyboardInterrupt, engine.Cancelled):
        print("\ninterrupted: no file was written", file=sys.stderr)
        return 130
    finally:
        studio.close()
    print(("\n" if shown[0] >= 0 else "") + f"wrote {result['path']} ({result['format']}, {result['frames']} frames, "
          f"{result['width']}x{result['height']}, {result['fps']:g} fps)")
    return 0


COMMANDS = {"evaluate": evaluate, "annotate": annotate, "export": export, "import": import_, "render": render,
            "check": check}
