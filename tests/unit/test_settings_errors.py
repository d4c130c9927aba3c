"""Settings from the environment and the error tree's one-line messages."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from labkit.cli.main import app
from sandbox._docker.engine import connect_engine
from sandbox.errors import DockerUnavailable, InvalidInput, LabkitError, UnknownChoice
from sandbox.settings import Settings, sanitize_id


def test_settings_read_labkit_variables(tmp_path):
    s = Settings.from_env({"LABKIT_SANDBOX_ID": "Alice Smith", "LABKIT_PORT": "18080",
                           "LABKIT_HOME": str(tmp_path), "LABKIT_PROGRESS_DEADLINE_S": "12"})
    assert s.sandbox_id == "alice-smith" and s.port == 18080 and s.home == tmp_path
    assert s.rollout.progress_deadline_s == 12.0 and s.backend == "docker"


def test_settings_reject_bad_values():
    with pytest.raises(UnknownChoice, match="docker, kube"):
        Settings.from_env({"LABKIT_BACKEND": "nomad"})
    with pytest.raises(InvalidInput, match="LABKIT_PORT"):
        Settings.from_env({"LABKIT_PORT": "99999"})
    with pytest.raises(InvalidInput, match="no usable characters"):
        sanitize_id("!!!")


def test_dead_socket_is_docker_unavailable_with_a_fix(tmp_path):
    dead = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(DockerUnavailable) as info:
        connect_engine(dead, timeout=2)
    text = str(info.value)
    assert dead in text and "fix:" in text and "\n" not in text


def test_cli_exits_2_with_one_line_when_docker_is_down(tmp_path):
    runner = CliRunner()
    env = {"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock", "LABKIT_SANDBOX_ID": "cli-dead"}
    for args in (["sandbox", "status"], ["deploy", "--model", "v1"], ["rollout", "history"],
                 ["search", "disk full"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        assert lines and lines[0].startswith("error: Docker daemon not reachable"), result.output


def test_every_error_is_a_labkit_error():
    import sandbox.errors as errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == errors.__name__:
            assert issubclass(obj, LabkitError), name
