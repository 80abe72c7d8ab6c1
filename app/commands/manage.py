"""`launch.py media|expressions|objects|trash ...`: list, rename, delete (to the trash),
restore, and the per-expression segment and status with their safety checks."""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

COMMANDS = ("media", "expressions", "objects", "trash")


def add_parsers(sub, project_help: str) -> None:
    def command(name: str, help: str):
        p = sub.add_parser(name, help=help)
        p.add_argument("--project", type=Path, default=argparse.SUPPRESS, help=project_help)
        return p.add_subparsers(dest="manage_command", metavar="ACTION", required=True)

    media = command("media", "list, rename (mv) or delete (rm: to the trash) media")
    media.add_parser("list", help="id, kind, frames, name, expressions done/total")
    mv = media.add_parser("mv", help="rename a media (its display name)")
    mv.add_argument("id", type=int)
    mv.add_argument("name")
    rm = media.add_parser("rm", help="move a media and its expressions to the trash (trash restore brings it back)")
    rm.add_argument("id", type=int)

    exprs = command("expressions", "list, fix the text of (edit), delete (rm), segment or mark expressions")
    ls = exprs.add_parser("list", help="id, media, status, text")
    ls.add_argument("--media", type=int, default=None, help="only this media's")
    edit = exprs.add_parser("edit", help="replace an expression's text (a typo fix; undoable on the page)")
    edit.add_argument("id", type=int)
    edit.add_argument("text")
    rm = exprs.add_parser("rm", help="move an expression to the trash")
    rm.add_argument("id", type=int)
    seg = exprs.add_parser("segment", help="run an engine on one expression: fills empty and model frames only")
    seg.add_argument("id", type=int)
    seg.add_argument("--engine", required=True, help="registered engine name (flowrvs-demo, sam3, ...)")
    seg.add_argument("--overwrite-manual", action="store_true",
                     help="also replace the annotator's frames, and run on a done/reviewed expression")
    st = exprs.add_parser("status", help="set the status (done is refused while frames are empty, unless --force)")
    st.add_argument("id", type=int)
    st.add_argument("status", choices=("todo", "in_progress", "done", "reviewed"))
    st.add_argument("--force", action="store_true", help="mark done although some frames have no mask")

    objs = command("objects", "rename (mv: its category) or delete (rm: to the trash) an expression's object")
    mv = objs.add_parser("mv", help="rename an object (its category, as exports write it)")
    mv.add_argument("expression", type=int)
    mv.add_argument("id", type=int)
    mv.add_argument("name")
    rm = objs.add_parser("rm", help="move an object (with its masks) to the trash")
    rm.add_argument("id", type=int)

    trash = command("trash", "what was deleted: list, restore, or empty it for good")
    trash.add_parser("list", help="kind, id, name, when and by whom")
    rs = trash.add_parser("restore", help="bring a deleted media, expression or object back")
    rs.add_argument("kind", choices=("media", "expression", "object"))
    rs.add_argument("id", type=int)
    trash.add_parser("empty", help="delete everything in the trash for good (their files and history too)")


def run(project: Path, args, locked) -> int:
    """Run one command; `locked(project, purpose)` takes the writer lock (cli._locked). Errors go
    to cli.main, the CLI's one translation."""
    from app.commands.cli import (  # the model flags given before the command
        _require_project,
        engine_paths,
    )
    from app.studio.studio import Studio
    _require_project(project)
    lock = None if args.manage_command == "list" else locked(project, f"{args.command} {args.manage_command}")
    studio = Studio(project, device=args.device, engine_paths=engine_paths(args))
    try:
        print(_dispatch(studio, args))
        return 0
    finally:
        studio.close()
        if lock is not None:
            lock.release()


def _dispatch(studio, args) -> str:
    from app.project import trash
    store, act, who = studio.store, args.manage_command, getpass.getuser()
    if args.command == "trash":
        if act == "list":
            rows = trash.list_trash(store)
            return "\n".join(f"{r['kind']:<10} {r['id']:>5}  {r['deleted_at'][:19]}  {r['deleted_by']:<12} {r['name']}"
                             for r in rows) or "the trash is empty"
        if act == "restore":
            row = trash.restore(store, args.kind, args.id)
            return f"restored {args.kind} {row['id']}"
        gone = trash.empty(store)
        return "emptied the trash: " + ", ".join(f"{n} {kind}" for kind, n in gone.items())
    if act == "rm":
        kind = {"media": "media", "expressions": "expression", "objects": "object"}[args.command]
        trash.delete(store, kind, args.id, by=who)
        return f"moved {kind} {args.id} to the trash (launch.py trash restore {kind} {args.id} brings it back)"
    if args.command == "media":
        if act == "list":
            return "\n".join(f"{m['id']:>5}  {m['kind']:<5} {m['frames']:>6} frames  {m['finished'] or 0}/"
                             f"{m['expressions']} done  {m['name']}" for m in store.list_media()) or "no media"
        return f"media {args.id} is now {store.rename_media(args.id, args.name)['name']!r}"
    if args.command == "objects":
        return f"object {args.id} is now {store.rename_object(args.expression, args.id, args.name)['category']!r}"
    if act == "list":
        return "\n".join(f"{e['id']:>5}  media {e['media_id']:<4} {e['status']:<11} {e['text']}"
                         for e in store.list_expressions(args.media)) or "no expressions"
    if act == "edit":
        store.set_text(args.id, args.text)
        return f"expression {args.id}: {store.get_expression(args.id)['text']!r}"
    if act == "status":
        studio.set_status(args.id, args.status, force=args.force)
        return f"expression {args.id} is {args.status}"
    result = studio.segment(args.id, args.engine, overwrite_manual=args.overwrite_manual)
    return f"{args.engine}: {result['report'].text()}"
