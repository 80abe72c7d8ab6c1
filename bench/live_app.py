"""Start the real app (`launch.py`) as a subprocess on a free port, for API, crash and browser tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveApp:
    def __init__(self, project: Path, *extra: str, demo: bool = False, env: dict[str, str] | None = None):
        """`env`: variables to set for the app (e.g. its own TMPDIR, for Gradio's cache)."""
        self.project, self.port = Path(project), free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = self.project.with_suffix(".log")
        args = [sys.executable, str(ROOT / "launch.py"), "--project", str(project), "--port", str(self.port),
                *([] if demo else ["--no-demo"]), *extra]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log_file = open(self.log, "w")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                urllib.request.urlopen(self.url + "config", timeout=2).read()
                return
            except urllib.error.HTTPError:  # it answers (behind a login, say): it is up
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the app did not answer within {timeout}s:\n{self.log.read_text()}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log_file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log_file.close()
