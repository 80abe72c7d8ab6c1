"""What the served studio lets others reach, decided before it starts.

- Server paths the page may import from: the project's folder and the folders given with
  --allow-path (the command line itself, run by the local user, reads anywhere).
- Who may log in: Gradio's own login, with users from --auth-file and FLOWLABEL_AUTH. An
  address other than loopback is served only with a login, or with --insecure-no-auth.
- Which Host names are answered (DNS rebinding): IP literals, localhost, this machine's names
  when serving the network, and the names given with --allow-host.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import UsageError

ALLOW_PATHS_ENV = "FLOWLABEL_ALLOW_PATHS"  # os.pathsep-separated folders
AUTH_ENV = "FLOWLABEL_AUTH"  # "user:password"
AUTH_FILE_ENV = "FLOWLABEL_AUTH_FILE"
ALLOW_HOSTS_ENV = "FLOWLABEL_ALLOW_HOSTS"  # comma-separated host names


class ExposureError(UsageError):
    """A setting or request that would expose more than the user chose; the message says what to do."""


# -- server paths --------------------------------------------------------------------------

def allowed_roots(project: str | Path, extra=()) -> list[Path]:
    """The project's folder, then each extra folder (flags and FLOWLABEL_ALLOW_PATHS), resolved."""
    env = [p for p in os.environ.get(ALLOW_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    roots = [Path(project).expanduser().resolve().parent]
    for folder in [*extra, *env]:
        root = Path(folder).expanduser().resolve()
        if root not in roots:
            roots.append(root)
    return roots


def check_readable(path: str | Path, roots: list[Path], what: str = "dataset") -> Path:
    """The resolved path if it lies under one of the roots (symlinks followed); else ExposureError."""
    resolved = Path(path).expanduser().resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    listed = ", ".join(str(r) for r in roots)
    raise ExposureError(
        f"the {what} path {path} is outside the folders the page may read ({listed}). Move the dataset into "
        f"one of them, or restart the studio with --allow-path DIR (repeatable; or {ALLOW_PATHS_ENV}); "
        "`launch.py import` on the command line reads from anywhere.")


# -- login ---------------------------------------------------------------------------------

def _credential(line: str, where: str) -> tuple[str, str]:
    user, sep, password = line.partition(":")
    if not sep or not user.strip() or not password:
        # The line itself is not echoed: it may hold a password.
        raise ExposureError(f"{where}: expected user:password (a user name, a colon, a non-empty password)")
    return user.strip(), password


def load_credentials(auth_file: str | Path | None = None, env: str | None = None) -> list[tuple[str, str]]:
    """Users from the password file (one user:password a line, # comments) and from the
    environment value ("user:password"). Empty when neither is set."""
    users = []
    if auth_file:
        path = Path(auth_file).expanduser()
        try:
            text = path.read_text()
        except OSError as e:
            raise ExposureError(f"cannot read the password file {path}: {e.strerror}; pass --auth-file "
                                "with a file of user:password lines") from e
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                users.append(_credential(line.rstrip("\r\n"), f"{path} line {number}"))
        if not users:
            raise ExposureError(f"the password file {path} holds no user:password line")
    if env:
        users.append(_credential(env, AUTH_ENV))
    return users


# -- addresses and Host names -------------------------------------------------------------

def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name in a Host header, without its port: 'a.b:80' -> 'a.b', '[::1]:80' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass
class HostPolicy:
    """Which Host header names are answered. IP literals always are: a rebinding page runs under
    a name its author controls, never under an address."""
    names: set[str] = field(default_factory=set)
    any_name: bool = False

    @classmethod
    def for_bind(cls, bind_host: str, extra=()) -> "HostPolicy":
        env = [h for h in os.environ.get(ALLOW_HOSTS_ENV, "").split(",") if h.strip()]
        extra = [h.strip().lower() for h in [*extra, *env]]
        names = {"localhost", *(h for h in extra if h != "*")}
        if not is_loopback(bind_host):
            names |= {bind_host.lower(), socket.gethostname().lower(), socket.getfqdn().lower()}
        return cls(names=names, any_name="*" in extra)

    def allows(self, header: str | None) -> bool:
        if self.any_name:
            return True
        if not header:
            return False
        name = _host_name(header)
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self.names or name.endswith(".localhost")


class HostCheck:
    """ASGI middleware: answers 403 to HTTP and WebSocket requests whose Host name is not allowed."""

    def __init__(self, app, policy: HostPolicy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not self.policy.allows(header):
                await self._refuse(scope, send, header)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope, send, header: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (f"Host {header!r} is not served here (DNS rebinding protection). Open the studio by its "
                f"address or localhost, or restart it with --allow-host {_host_name(header) or 'NAME'}.\n").encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- the decision at startup --------------------------------------------------------------

@dataclass
class Exposure:
    host: str
    port: int
    users: list[tuple[str, str]]
    roots: list[Path]
    hosts: HostPolicy

    @classmethod
    def decide(cls, host: str, port: int, project: str | Path, auth_file=None, allow_paths=(), allow_hosts=(),
               insecure_no_auth: bool = False) -> "Exposure":
        """Raises ExposureError for a network address without a login (unless insecure_no_auth)."""
        users = load_credentials(auth_file or os.environ.get(AUTH_FILE_ENV), os.environ.get(AUTH_ENV))
        if not users and not is_loopback(host) and not insecure_no_auth:
            raise ExposureError(
                f"refusing to serve {host} without a login: anyone who reaches this port could read and change "
                f"the project. Pass --auth-file FILE (user:password lines) or set {AUTH_ENV}=user:password; or, "
                "on a network you trust, --insecure-no-auth.")
        return cls(host=host, port=port, users=users, roots=allowed_roots(project, allow_paths),
                   hosts=HostPolicy.for_bind(host, allow_hosts))

    def summary(self) -> str:
        where = "this machine only" if is_loopback(self.host) else "the network"
        login = f"on ({len(self.users)} user{'s' if len(self.users) != 1 else ''})" if self.users else "OFF"
        names = "any" if self.hosts.any_name else ", ".join(sorted(self.hosts.names)) + ", IP addresses"
        return "\n".join([
            f"Serving http://{self.host}:{self.port}/ to {where}",
            f"  login: {login}",
            f"  Host names answered: {names}",
            "  page imports read from: " + ", ".join(str(r) for r in self.roots)])

    def launch_kwargs(self) -> dict:
        from starlette.middleware import Middleware
        return {"auth": self.users or None,
                "app_kwargs": {"middleware": [Middleware(HostCheck, policy=self.hosts)]}}
