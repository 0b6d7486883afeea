"""What a submission wrote: measured and removed without trusting it.

Everything a student's kernel may write (its scratch folder, the judge exchange) is hostile to
whoever cleans it up: links to the gradebook, the template or other students' folders, chains
thousands of folders deep, folders without permissions, FIFOs, odd names. :func:`folder_size`
and :func:`remove_tree` never follow a link, never recurse (no RecursionError, no path longer
than PATH_MAX: each folder is moved to the top before it is emptied) and never raise.
"""
from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path


#: What an entry costs at least, whatever its blocks say: a folder (a block on most file
#: systems; none on tmpfs) and anything else (an empty file, a link, a FIFO: an inode's share).
FOLDER_BYTES, ENTRY_BYTES = 4096, 512


def folder_size(folder: Path, stop: int) -> int:
    """Bytes ``folder`` takes (not following links): its files' blocks, and at least
    :data:`FOLDER_BYTES` for each folder in it and :data:`ENTRY_BYTES` for each other entry, so
    that a great many empty folders or files count too. Stops counting once past ``stop``."""
    total, stack = 0, [str(folder)]
    while stack and total <= stop:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        total += FOLDER_BYTES
                    else:
                        total += max(ENTRY_BYTES, entry.stat(follow_symlinks=False).st_blocks * 512)
        except OSError:
            continue
    return total


def remove_tree(root: Path, keep_root: bool = False) -> bool:
    """Remove ``root`` and everything in it (only its contents with ``keep_root``), never
    following a link out of it; True if everything went. A link at ``root`` itself is removed,
    not followed."""
    root = Path(root)
    try:
        info = os.lstat(root)
    except OSError:
        return True
    if not stat.S_ISDIR(info.st_mode):
        return keep_root or _unlink(root)
    flat = itertools.count()
    pending = [root]
    while pending:
        folder = pending.pop()
        for entry in _entries(folder):
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                _unlink(Path(entry.path))
                continue
            moved = root / f".coursekit-removing-{next(flat)}"
            try:  # to the top: the path stays short however deep the chain
                os.rename(entry.path, moved)
            except OSError:
                moved = Path(entry.path)
            pending.append(moved)
        if folder != root:
            _rmdir(folder)
    if not keep_root:
        _rmdir(root)
        return not os.path.lexists(root)
    return not any(True for _ in _entries(root))


def _entries(folder: Path) -> list:
    for attempt in range(2):
        try:
            with os.scandir(folder) as it:
                return list(it)
        except PermissionError:
            if attempt == 0:
                _own(folder)
        except OSError:
            return []
    return []


def _own(folder: Path) -> None:
    try:
        if stat.S_ISDIR(os.lstat(folder).st_mode):
            os.chmod(folder, 0o700)
    except OSError:
        pass


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return not os.path.lexists(path)


def _rmdir(path: Path) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
