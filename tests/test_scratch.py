"""Removing what a submission wrote (coursekit.grading.kernel.scratch): never follows a link,
never recurses without bound, never raises."""
from __future__ import annotations

import os
import sys

from coursekit.grading.kernel.scratch import folder_size, remove_tree


def _hostile_tree(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "gradebook.db").write_text("grades")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.symlink(victim, scratch / "link-to-folder")
    os.symlink(victim / "gradebook.db", scratch / "link-to-file")
    os.symlink(scratch / "nowhere", scratch / "dangling")
    here = os.getcwd()
    os.chdir(scratch)
    try:
        for _ in range(5000):  # deeper than PATH_MAX allows as one path, and than the recursion limit
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(here)
    os.mkfifo(scratch / "fifo")
    (scratch / "odd \n name \x01").write_text("x")
    many = scratch / "many"
    many.mkdir()
    for i in range(2000):
        (many / str(i)).touch()
    closed = scratch / "closed"
    closed.mkdir()
    (closed / "inside").write_text("x")
    os.chmod(closed, 0)
    return victim, scratch


def test_a_hostile_tree_goes_and_nothing_outside_it(tmp_path):
    victim, scratch = _hostile_tree(tmp_path)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # no recursion at all, not merely less of it
    try:
        assert remove_tree(scratch) is True
    finally:
        sys.setrecursionlimit(limit)
    assert not os.path.lexists(scratch)
    assert (victim / "gradebook.db").read_text() == "grades"


def test_keep_root_empties_the_folder(tmp_path):
    victim, scratch = _hostile_tree(tmp_path)
    assert remove_tree(scratch, keep_root=True) is True
    assert scratch.is_dir() and not os.listdir(scratch)
    assert (victim / "gradebook.db").read_text() == "grades"


def test_a_link_at_the_top_is_removed_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    os.symlink(victim, tmp_path / "link")
    assert remove_tree(tmp_path / "link") is True
    assert not os.path.lexists(tmp_path / "link") and (victim / "keep").exists()
    assert remove_tree(tmp_path / "link", keep_root=True) is True  # gone already: nothing to do
    assert remove_tree(tmp_path / "missing") is True


def test_folder_size_does_not_follow_links(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob").write_bytes(b"0" * (1 << 20))
    small = tmp_path / "small"
    small.mkdir()
    os.symlink(big, small / "link")
    assert folder_size(small, 1 << 30) < 1 << 16 <= folder_size(big, 1 << 30)


def test_folder_size_counts_empty_folders_and_files(tmp_path):
    """Empty folders and files take no blocks on some file systems (tmpfs) but inodes and
    blocks on others: each counts, so many of them reach the disk budget."""
    from coursekit.grading.kernel.scratch import ENTRY_BYTES, FOLDER_BYTES

    for i in range(300):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "empty").touch()
    assert folder_size(tmp_path, 1 << 30) >= 300 * (FOLDER_BYTES + ENTRY_BYTES)
