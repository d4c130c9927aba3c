"""A grading box belongs to its grader, not to the sandbox it grades; orphans are reaped by label.

A lab's first cell runs ``sb.reset()`` from inside the box (through the control endpoint): that
tears the sandbox down and up again, and must not take the box with it (it did: every graded
kernel died in its first cell, and every submission was reported crashed). The reaper removes
what a dead grader left, box included, and nothing of a live grader or of anyone else.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from labkit import reaper
from sandbox import labels
from sandbox._docker.backend import DockerSandbox
from sandbox.settings import Settings

pytestmark = [pytest.mark.docker]


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _box(client, sandbox_id: str, grader: str | None = None):
    """A stand-in grading box: a sleeping container labelled as the provisioner labels one."""
    extra = {labels.GRADER: grader} if grader else {}
    return client.containers.run(
        Settings.from_env().images.box, ["sleep", "300"], name=f"labkit-{sandbox_id}-box", detach=True,
        network_mode="none", labels=labels.for_sandbox(sandbox_id, labels.GRADING_BOX, **extra))


def _exists(client, name: str) -> bool:
    return bool(client.containers.list(all=True, filters={"name": f"^{name}$"}))


def test_reset_and_down_of_the_graded_sandbox_leave_its_box(docker_client, images_built, tmp_path):
    settings = Settings.from_env(sandbox_id=unique_id("box"), home=tmp_path / "home")
    sb = DockerSandbox(settings, client=docker_client).up()
    box = _box(docker_client, sb.id)
    try:
        sb.reset()
        assert _exists(docker_client, box.name), "reset() removed the grading box"
        removed = sb.down()
        assert removed and not any(box.name in r for r in removed)
        assert _exists(docker_client, box.name)
    finally:
        box.remove(force=True)
        sb.down()


@pytest.mark.xdist_group("foreign-objects")  # makes a stranger: never beside a grader that compares them
def test_the_reaper_removes_a_dead_graders_sandbox_and_box_only(docker_client, images_built, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    host = reaper.lease().rpartition(":")[0]
    orphan = Settings.from_env(sandbox_id=unique_id("orphan"), home=tmp_path / "a", grader=f"{host}:{dead}")
    live = Settings.from_env(sandbox_id=unique_id("live"), home=tmp_path / "b", grader=reaper.lease())
    made = [DockerSandbox(s, client=docker_client).up() for s in (orphan, live)]
    boxes = [_box(docker_client, s.sandbox_id, s.grader) for s in (orphan, live)]
    stranger = docker_client.containers.run(Settings.from_env().images.box, ["sleep", "300"], detach=True,
                                            network_mode="none", name=unique_id("not-ours"))
    try:
        assert set(reaper.orphaned(orphan)) == {orphan.sandbox_id}
        removed = reaper.reap(orphan)
        assert any(boxes[0].name in r for r in removed)
        assert not docker_client.containers.list(all=True, filters=labels.docker_filters(orphan.sandbox_id))
        assert _exists(docker_client, boxes[1].name) and made[1].containers()
        assert _exists(docker_client, stranger.name)
    finally:
        for c in (*boxes, stranger):
            try:
                c.remove(force=True)
            except Exception:  # noqa: BLE001 - already reaped
                pass
        for sb in made:
            sb.down()


def test_grading_refuses_a_box_image_of_another_kit(docker_client, images_built, monkeypatch):
    """The box runs the kit it was built with: after an edit of the kit, grading says to rebuild."""
    from graders.box import image
    from sandbox.errors import InfrastructureError

    image.check_box_image(Settings.from_env())  # `make images` built it from this source
    monkeypatch.setattr(image, "kit_digest", lambda: "0000000000000000")
    with pytest.raises(InfrastructureError, match="another version of the kit") as caught:
        image.check_box_image(Settings.from_env())
    assert "labkit images build" in str(caught.value)
