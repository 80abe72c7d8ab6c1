"""What a served studio exposes: page imports confined to roots, a login required off
loopback, and Host names checked (DNS rebinding) against the live app over real HTTP."""
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import gradio as gr
import pytest
from gradio_client import Client

from app.api import user_errors
from app.exposure import (
    AUTH_ENV,
    Exposure,
    ExposureError,
    HostPolicy,
    allowed_roots,
    check_readable,
    load_credentials,
)
from app.studio import Studio
from app.ui.extras_panel import import_dataset
from bench.live_app import ROOT, LiveApp, free_port

# -- server paths ----------------------------------------------------------------------------


def test_roots_are_the_project_folder_then_the_flags_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWLABEL_ALLOW_PATHS", os.pathsep.join([str(tmp_path / "env"), ""]))
    roots = allowed_roots(tmp_path / "p" / "x.sqlite", [tmp_path / "flag", tmp_path / "p"])
    assert roots == [tmp_path / "p", tmp_path / "flag", tmp_path / "env"]


def test_a_path_outside_the_roots_is_refused_even_through_dots_or_symlinks(tmp_path):
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    assert check_readable(root / "data", [root]) == root / "data"
    for outside in (tmp_path / "secret", root / ".." / "secret", root / "link", "/etc"):
        with pytest.raises(ExposureError, match=rf"outside the folders the page may read \({root}\).*--allow-path"):
            check_readable(outside, [root])


def test_the_page_imports_only_from_its_roots(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere" / "frames").mkdir(parents=True)
    studio = Studio(tmp_path / "project" / "p.sqlite")
    page_import = user_errors(lambda *a: import_dataset(studio, *a))  # as the page wires it
    try:
        with pytest.raises(gr.Error, match="outside the folders the page may read.*--allow-path DIR"):
            page_import("mevis", str(tmp_path / "elsewhere"), "")
        # The frames folder is checked too, not only the dataset.
        with pytest.raises(gr.Error, match="frames folder path .* is outside"):
            page_import("mevis", str(tmp_path / "project"), str(tmp_path / "elsewhere" / "frames"))
        # With the folder allowed, the importer itself looks (and finds no dataset there).
        studio.import_roots = allowed_roots(studio.store.path, [tmp_path / "elsewhere"])
        with pytest.raises(gr.Error) as info:
            page_import("mevis", str(tmp_path / "elsewhere"), "")
        assert "outside" not in str(info.value)
        assert studio.store.list_media() == []
    finally:
        studio.close()


# -- login -------------------------------------------------------------------------------------


def test_credentials_from_a_file_and_the_environment(tmp_path):
    auth = tmp_path / "users"
    auth.write_text("# annotators\nana:s3cret:with:colons\n\n  bo:pw\n")
    assert load_credentials(auth, "env:pw2") == [("ana", "s3cret:with:colons"), ("bo", "pw"), ("env", "pw2")]
    assert load_credentials(None, None) == []
    auth.write_text("ana\n")
    with pytest.raises(ExposureError, match=r"users line 1: expected user:password"):
        load_credentials(auth)
    auth.write_text("# nothing\n")
    with pytest.raises(ExposureError, match="holds no user:password line"):
        load_credentials(auth)
    with pytest.raises(ExposureError, match="cannot read the password file"):
        load_credentials(tmp_path / "missing")
    with pytest.raises(ExposureError, match=f"{AUTH_ENV}: expected user:password"):
        load_credentials(None, ":nouser")


def test_a_network_address_needs_a_login_or_an_explicit_waiver(tmp_path, monkeypatch):
    monkeypatch.delenv(AUTH_ENV, raising=False)
    monkeypatch.delenv("FLOWLABEL_AUTH_FILE", raising=False)
    project = tmp_path / "p.sqlite"
    for host in ("0.0.0.0", "192.168.1.20", "::", "myhost"):
        with pytest.raises(ExposureError, match=f"refusing to serve {host} without a login.*--auth-file"):
            Exposure.decide(host, 7860, project)
    open_one = Exposure.decide("0.0.0.0", 7860, project, insecure_no_auth=True)
    assert "login: OFF" in open_one.summary() and "to the network" in open_one.summary()
    local = Exposure.decide("127.0.0.1", 7860, project)
    assert local.launch_kwargs()["auth"] is None and "this machine only" in local.summary()
    monkeypatch.setenv(AUTH_ENV, "ana:pw")
    served = Exposure.decide("0.0.0.0", 7860, project, allow_paths=[tmp_path / "data"])
    assert served.users == [("ana", "pw")] and served.launch_kwargs()["auth"] == [("ana", "pw")]
    assert "login: on (1 user)" in served.summary() and str(tmp_path / "data") in served.summary()


def test_serving_the_network_without_a_login_is_refused_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (AUTH_ENV, "FLOWLABEL_AUTH_FILE")}
    done = subprocess.run([sys.executable, "launch.py", "--project", tmp_path / "p.sqlite", "--host", "0.0.0.0",
                           "--port", str(free_port()), "--no-demo"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "refusing to serve 0.0.0.0 without a login" in done.stderr, done.stderr
    assert not (tmp_path / "p.sqlite").exists()  # not even the project was created


# -- Host names ----------------------------------------------------------------------------------


def test_host_policy_answers_addresses_localhost_and_named_hosts():
    local = HostPolicy.for_bind("127.0.0.1", ["studio.lan"])
    for ok in ("127.0.0.1:7860", "localhost:7860", "LOCALHOST", "[::1]:7860", "10.0.0.5", "studio.lan:80",
               "app.localhost:7860"):
        assert local.allows(ok), ok
    for bad in ("evil.example:7860", "127.0.0.1.evil.example", "", None, "localhost.evil.example",
                socket.gethostname() + ".invalid"):
        assert not local.allows(bad), bad
    assert HostPolicy.for_bind("0.0.0.0").allows(socket.gethostname())
    assert HostPolicy.for_bind("127.0.0.1", ["*"]).allows("anything.example")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app on all interfaces, with a login from the environment and one extra host name."""
    root = tmp_path_factory.mktemp("exposure")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(AUTH_ENV, "ana:correct horse")
        env.setenv("TMPDIR", str(root))
        app = LiveApp(root / "p.sqlite", "--host", "0.0.0.0", "--allow-host", "studio.lan")
    yield app
    app.stop()


def status(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def test_the_live_app_refuses_foreign_host_names(served):
    port = served.port
    for path in ("", "config", "gradio_api/info", "gradio_api/queue/data?session_hash=x"):
        code, body = status(served.url + path, f"rebind.example:{port}")
        assert code == 403 and "DNS rebinding" in body and "--allow-host rebind.example" in body, (path, body)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"studio.lan:{port}"):
        code, body = status(served.url, host)
        assert code == 200 and "DNS rebinding" not in body, (host, code)


def test_the_live_app_needs_its_login_and_says_what_it_exposes(served):
    log = served.log.read_text()
    assert f"Serving http://0.0.0.0:{served.port}/ to the network" in log
    assert "login: on (1 user)" in log and "studio.lan" in log
    assert status(served.url + "config")[0] == 401  # no login, no config
    with pytest.raises(Exception, match="(?i)login|auth|401"):
        Client(served.url, verbose=False, auth=("ana", "wrong"))
    client = Client(served.url, verbose=False, auth=("ana", "correct horse"))
    with pytest.raises(Exception, match="no media with id 99"):
        client.predict(99, "works once logged in", api_name="/add_expression")
