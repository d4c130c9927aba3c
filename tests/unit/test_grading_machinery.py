"""The grading workflow's own failures are classified by fact, not by the trainee's output."""

from __future__ import annotations

import shutil
from collections import namedtuple

from labkit import course_grade
from labkit.course_grade import DISK_FULL_BYTES, disk_full

Usage = namedtuple("Usage", "total used free")


def test_a_disk_with_room_is_not_full(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**10, 10**9, DISK_FULL_BYTES))
    assert disk_full(tmp_path) == ""


def test_a_nearly_full_disk_is_named_with_what_is_free_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**10, 10**10, 3 * 10**6))
    text = disk_full(tmp_path)
    assert str(tmp_path) in text and "3.0 MB free" in text and "free space" in text and "\n" not in text


def test_an_unreadable_course_directory_counts_as_unusable(tmp_path):
    assert "cannot be read" in disk_full(tmp_path / "missing")


def test_signals_are_named():
    assert course_grade._signal_name(9) == "SIGKILL" and course_grade._signal_name(99) == "signal 99"
