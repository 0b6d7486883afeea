"""`coursekit feedback`: each student's feedback pages as one zip, ready to upload to the LMS.

``OUT/feedback/<student>/<notebook>.html`` (what `coursekit autograde` wrote, every notebook of
the term so far) becomes ``OUT/feedback-zips/<student>.zip`` holding ``<notebook>.html``. A
zip is rewritten only when its pages changed, through a temporary file renamed into place.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..course.directory import CourseError

#: the zips this command wrote into a folder (only those are ever removed from it)
MANIFEST = ".coursekit-feedback-zips"
#: a fixed date for every member: the same pages give the same zip, byte for byte
_DATE = (2020, 1, 1, 0, 0, 0)


def bundle(out: Path, to: Path | None = None) -> dict[str, Path]:
    """student -> the zip of their feedback pages under ``to`` (default ``out/feedback-zips``)."""
    pages = Path(out) / "feedback"
    if not pages.is_dir():
        raise CourseError(f"no feedback pages in {pages}: grade a class into {out} first "
                          f"(coursekit autograde SUBMISSIONS --out {out})")
    to = Path(to) if to is not None else Path(out) / "feedback-zips"
    to.mkdir(parents=True, exist_ok=True)
    made = {}
    for folder in sorted(p for p in pages.iterdir() if p.is_dir()):
        htmls = sorted(folder.glob("*.html"))
        if not htmls:
            continue
        dest = to / f"{folder.name}.zip"
        tmp = to / f".{folder.name}.zip.tmp"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for page in htmls:
                info = zipfile.ZipInfo(page.name, date_time=_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, page.read_bytes())
        if dest.is_file() and dest.read_bytes() == tmp.read_bytes():
            tmp.unlink()
        else:
            os.replace(tmp, dest)
        made[folder.name] = dest
    # a zip this command wrote before for a student whose pages are all gone (a refused
    # resubmission) is removed; nothing else in the folder is touched
    manifest = to / MANIFEST
    try:
        before = set(manifest.read_text().split())
    except OSError:
        before = set()
    for stale in sorted(before - {p.name for p in made.values()}):
        (to / stale).unlink(missing_ok=True)
    manifest.write_text("".join(f"{p.name}\n" for p in made.values()))
    return made
