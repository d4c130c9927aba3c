"""The hub's pieces that need no hub: password hashes, the roster authenticator, the config it
renders (the formgrader's CSP, the trainees' ipc kernels), the grade progress display."""

from __future__ import annotations

import asyncio
import io
import json
import types
from pathlib import Path

import pytest
from rich.console import Console

from labkit.cli.grade_progress import GradeProgress
from labkit.hub import passwords
from labkit.hub.config import FORMGRADER_CSP, HubConfig, configure, formgrader_files, trainee_files
from sandbox.errors import InvalidInput

pytest.importorskip("jupyterhub")


def test_passwords_are_salted_scrypt_hashes_never_the_password(tmp_path):
    path = tmp_path / "passwords.json"
    passwords.set_password(path, "ann", "correct horse battery")
    passwords.set_password(path, "bob", "correct horse battery")
    text = path.read_text()
    assert "correct horse" not in text and oct(path.stat().st_mode & 0o777) == "0o600"
    hashes = json.loads(text)
    assert hashes["ann"] != hashes["bob"]  # salted
    assert hashes["ann"].startswith("scrypt$")
    assert passwords.verify_password("correct horse battery", hashes["ann"])
    assert not passwords.verify_password("correct horse batterx", hashes["ann"])
    assert not passwords.verify_password("x", "md5$abc")


def _login(auth, name, password):
    return asyncio.run(auth.authenticate(None, {"username": name, "password": password}))


def test_roster_authenticator_lets_in_only_the_roster_with_its_password(tmp_path):
    from labkit.hub.auth import RosterAuthenticator

    path = tmp_path / "passwords.json"
    passwords.set_password(path, "ann", "ann-password-1")
    passwords.set_password(path, "mallory", "mallory-pass-1")  # a hash, but not on the roster
    auth = RosterAuthenticator(password_file=str(path), allowed_users={"ann", "bob"}, max_failures=3)
    assert _login(auth, "ann", "ann-password-1") == "ann"
    assert _login(auth, "ANN", "ann-password-1") == "ann"  # JupyterHub's normalisation
    assert _login(auth, "mallory", "mallory-pass-1") is None
    assert _login(auth, "bob", "anything-at-all") is None  # on the roster, no password set yet
    for _ in range(3):
        assert _login(auth, "ann", "wrong") is None
    assert _login(auth, "ann", "ann-password-1") is None  # locked after max_failures


def _cfg(tmp_path: Path) -> HubConfig:
    (tmp_path / "hub").mkdir(exist_ok=True)
    (tmp_path / "hub" / "admin.token").write_text("t0ken")
    return HubConfig(state=tmp_path, course_root=tmp_path / "course", course_id="labkit",
                     trainees=("ann", "bob"), instructors=("maria",), port=18000)


def test_config_round_trips_and_renders_the_hub(tmp_path):
    cfg = _cfg(tmp_path)
    cfg.save()
    again = HubConfig.load(tmp_path)
    assert again == cfg and isinstance(again.state, Path) and again.trainees == ("ann", "bob")
    from traitlets.config import Config

    c = Config()
    configure(c, cfg)
    assert c.Authenticator.allowed_users == {"ann", "bob", "maria"}
    assert c.Authenticator.admin_users == {"maria"}
    assert c.JupyterHub.load_groups["formgrade-labkit"]["users"] == ["maria"]
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["labkit", "labkit-sandboxes", "labkit-admin"]
    formgrader = c.JupyterHub.services[0]
    assert formgrader["cwd"] == str(cfg.course_root)
    assert formgrader["environment"]["LABKIT_EXCHANGE_ROOT"] == str(cfg.exchange)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["formgraders"]["scopes"] == ["access:services!service=labkit"]
    assert c.JupyterHub.cleanup_servers is False


def test_formgrader_may_be_framed_by_its_own_lab_and_trainees_get_ipc_kernels(tmp_path):
    cfg = _cfg(tmp_path)
    server = json.loads(formgrader_files(cfg)["jupyter_server_config.json"])["ServerApp"]
    assert server["tornado_settings"]["headers"]["Content-Security-Policy"] == FORMGRADER_CSP == "frame-ancestors 'self'"
    assert server["jpserver_extensions"]["labkit.hub.formgrade"] is True
    assert server["terminals_enabled"] is False
    files = trainee_files(cfg)
    assert json.loads(files["jupyter_server_config.json"])["KernelManager"]["transport"] == "ipc"
    assert f"c.Exchange.root = {str(cfg.exchange)!r}" in files["nbgrader_config.py"]
    disabled = json.loads(files["labconfig/page_config.json"])["disabledExtensions"]
    assert disabled["@jupyter/nbgrader:formgrader"] and "@jupyter/nbgrader:assignment-list" not in disabled


def test_roster_ids_that_cannot_be_accounts_are_refused_with_the_rule():
    from labkit.hub.accounts import check_name

    assert check_name("ann-2") == "ann-2"
    for bad in ("Ann", "ann.smith", "1ann", "a" * 33, "ann@example.org"):
        with pytest.raises(InvalidInput, match="lowercase letter"):
            check_name(bad)


def test_grade_progress_counts_done_running_and_failed():
    out = io.StringIO()
    with GradeProgress("lab00", Console(file=out, width=160, force_terminal=False)) as progress:
        for s in ("ann", "bob", "cid"):
            progress("queued", s, None)
        progress("started", "ann", None)
        progress("started", "bob", None)
        assert progress.running == ["ann", "bob"]
        progress("finished", "ann", types.SimpleNamespace(status="graded"))
        progress("finished", "bob", types.SimpleNamespace(status="timeout"))
        task = progress.display.tasks[0]
        assert (task.completed, task.total, task.fields["failed"], task.fields["running"]) == (2, 3, 1, "-")
    assert "2/3" in out.getvalue() and "failed: 1" in out.getvalue()
