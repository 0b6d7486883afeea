"""Downloading and unpacking archives so that nothing is ever left half-made.

Every step writes into a temporary name beside its destination and renames it into place only
when it is complete and checked: a download interrupted half-way, a checksum that does not
match or an archive that is truncated leaves the destination exactly as it was.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from ..progress import bar as progress_bar


class DataError(RuntimeError):
    """A dataset could not be fetched, unpacked or validated; the message says what to do."""


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str | None, retry: str) -> None:
    """Raise DataError unless ``path`` has the expected sha256 (None: nothing to check)."""
    if not sha256:
        return
    actual = sha256sum(path)
    if actual != sha256.lower():
        raise DataError(f"{path} has sha256 {actual}, expected {sha256}: the file is corrupt, "
                        f"truncated or a different version. {retry}")


def download(url: str, dest: Path, sha256: str | None = None, progress: bool = True,
             retry: str = "Run the command again to retry.") -> Path:
    """Download ``url`` to ``dest`` (checked against ``sha256`` when given), atomically.

    The bytes go to a temporary file in ``dest``'s folder, which is renamed to ``dest`` only
    after the download finished and the checksum matched; on any failure it is removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except OSError as exc:
                raise DataError(f"could not download {url}: {exc}. Check the address and your "
                                f"connection. {retry}") from exc
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(total=total, unit="B", unit_scale=True, desc=dest.name,
                                  progress=progress) as bar:
                    try:
                        while block := response.read(1 << 20):
                            out.write(block)
                            bar.update(len(block))
                    except OSError as exc:
                        raise DataError(f"the download of {url} broke off: {exc}. {retry}") from exc
        if total is not None and os.path.getsize(tmp) != total:
            raise DataError(f"the download of {url} stopped after {os.path.getsize(tmp)} of "
                            f"{total} bytes. {retry}")
        verify(Path(tmp), sha256, retry)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def extract_zip(archive: Path, into: Path, retry: str) -> None:
    """Unpack a zip archive into the (new, empty) folder ``into``, refusing unsafe member names."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = Path(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise DataError(f"{archive} contains an unsafe path {info.filename!r}; "
                                    f"refusing to unpack it.")
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{archive} is damaged: {bad} fails its CRC check. {retry}")
            zf.extractall(into)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{archive} is not a complete zip archive ({exc}): it is probably "
                        f"truncated. {retry}") from exc


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished folder ``tmp`` to ``dest``, replacing an older ``dest`` only after the
    new one is in place."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
