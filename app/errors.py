"""The one base of the errors a user can fix, and how each surface says them.

Every module raises its own named subclass of UserError (the store's NotFoundError, MediaError,
FormatError, ...), whose message says what went wrong and what to do. The engine package never
imports app, so its user-facing errors join UserError in USER_ERRORS, the tuple every surface
catches (an `except` clause ignores virtual subclasses, so a tuple it is). Each surface
translates once: the page's events and the API through `user_errors` (app/serve/api.py, applied
by app/ui/wiring.py), the canvas calls through `server_function` (app/ui/wiring.py), the CLI
through `exit_code` (app/commands/cli.py's main).
"""
from __future__ import annotations

import engine
from engine.models import DownloadError
from engine.plugins import EngineModuleError


class UserError(Exception):
    """Something the user can fix; str(e) says what to do. `exit_code` is the CLI's status:
    1 the work failed, 2 the command was asked wrongly, 3 the project is busy."""
    exit_code = 1


class UsageError(UserError):
    """The request names something that does not exist or cannot be done as asked."""
    exit_code = 2


# The engine's own user errors, and a file named by the user that is gone (theirs to fix,
# wherever it is noticed).
USER_ERRORS = (UserError, engine.EngineNotConfigured, engine.UnknownEngineError, engine.Cancelled,
               EngineModuleError, DownloadError, FileNotFoundError)

# Statuses for the engine's classes, which cannot carry the attribute themselves.
_EXIT_CODES = {engine.UnknownEngineError: 2, EngineModuleError: 2, engine.Cancelled: 130}


def exit_code(error: BaseException) -> int:
    for cls, code in _EXIT_CODES.items():
        if isinstance(error, cls):
            return code
    return getattr(error, "exit_code", 1)
