"""What the references computed during the release's self-checks, for a coursekit without them.

In the students' coursekit (``coursekit release --wheel``) a locked reference has no body; the
self-checks still need what it computes on their fixed inputs. So the release runs each
locked notebook's self-checks once with the instructor's answers, :func:`start` records every
reference call (its arguments and its value, as :mod:`coursekit.values` data: no code), and the
wheel carries them (``recorded.json`` + ``recorded.npz`` beside this file). There,
:func:`replay` answers a call whose arguments were recorded, and nothing else: a student's own
inputs get :class:`coursekit.reference.LockedAnswer`.

Arguments are matched by value: the parameters by name (defaults applied), encoded as values,
hashed with every array's dtype, shape and bytes; a function a checker passes (the f of a
numerical gradient) by where coursekit defines it.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import values

DATA = Path(__file__).with_name("recorded.json")
ARRAYS = DATA.with_suffix(".npz")

_RECORDING: dict[str, tuple[str, dict, list]] | None = None
_LOADED: tuple[dict, Any] | None = None


def key(name: str, arguments: dict) -> str | None:
    """The digest of a call of ``name`` with ``arguments`` (parameter -> value); None when an
    argument is not a value (a function, a model)."""
    arrays: list = []
    try:
        tree = values.encode({k: arguments[k] for k in sorted(arguments)}, arrays, _by_name)
    except values.WireError:
        return None
    digest = hashlib.sha256(name.encode() + json.dumps(tree, sort_keys=True).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _by_name(value) -> dict:
    """A function a checker passes a reference (the f of numerical_gradient), by where it is
    defined in coursekit: the same in the release's run and in the student's. Anything else
    (the student's own function, a model) makes the call one that cannot be replayed."""
    code = getattr(value, "__code__", None)
    module = getattr(value, "__module__", "") or ""
    if code is None or not module.startswith("coursekit."):
        raise values.WireError(f"a {type(value).__name__} is not a value")
    return {"k": "function", "v": f"{module}.{value.__qualname__}:{code.co_firstlineno}"}


#: the most a recording may hold (bytes of arrays): a self-check's inputs are small
LIMIT = 256 << 20

_CHECKS = 0      # checkers running now (coursekit.checks.checker.Checker)
_DEPTH = 0       # reference calls running now: only the outermost is recorded
_BYTES = 0


def start() -> None:
    """Record the reference calls that checkers make from now on (the release does this in a
    notebook's kernel); the notebook's own experiments are not recorded."""
    global _RECORDING, _BYTES
    _RECORDING, _BYTES = {}, 0


def recording() -> bool:
    return _RECORDING is not None


@contextmanager
def checking():
    """While a checker runs (entered by every Checker call)."""
    global _CHECKS
    _CHECKS += 1
    try:
        yield
    finally:
        _CHECKS -= 1


def record(name: str, func: Callable, args: tuple, kwargs: dict, call: Callable[[], Any]):
    """``call()`` (the reference on its arguments), recorded under their digest when a checker
    made it (not from inside another reference)."""
    global _DEPTH, _BYTES
    digest = None
    if _CHECKS and not _DEPTH:
        try:
            bound = inspect.signature(func).bind(*args, **kwargs)
            bound.apply_defaults()
            digest = key(name, dict(bound.arguments))
        except TypeError:
            digest = None
    _DEPTH += 1
    try:
        result = call()
    finally:
        _DEPTH -= 1
    if digest is not None and digest not in _RECORDING:
        arrays: list = []
        changed = {k: v for k, v in bound.arguments.items() if isinstance(v, values.SYNCED)}
        try:
            tree = {"value": values.encode(result, arrays),
                    "after": values.encode(changed, arrays)}  # what it did to its arguments
        except values.WireError:  # a value that is not data (a transform): not replayable
            return result
        own = [np.array(a, copy=True) for a in arrays]
        _BYTES += sum(a.nbytes for a in own)
        if _BYTES > LIMIT:
            raise RuntimeError(f"recording the self-checks took more than {LIMIT >> 20} MB: a checker "
                               f"calls {name} on large inputs")
        _RECORDING[digest] = (name, tree, own)
    return result


def save(folder: Path, stem: str) -> Path:
    """Write what was recorded to ``folder/stem.json`` (+ ``.npz``)."""
    entries, arrays = {}, {}
    for digest, (name, tree, own) in (_RECORDING or {}).items():
        offset = len(arrays)
        for i, array in enumerate(own):
            arrays[f"a{offset + i}"] = array
        entries[digest] = {"name": name, "offset": offset, "count": len(own), "tree": tree}
    path = Path(folder) / f"{stem}.json"
    path.write_text(json.dumps(entries))
    np.savez_compressed(path.with_suffix(".npz"), **arrays)
    return path


def merge(parts: list[Path], out: Path) -> int:
    """Merge recordings written by :func:`save` into ``out`` (+ ``.npz``); returns the calls."""
    entries, arrays = {}, {}
    for part in parts:
        with np.load(part.with_suffix(".npz"), allow_pickle=False) as npz:
            own = dict(npz)
        for digest, entry in json.loads(part.read_text()).items():
            if digest in entries:
                continue
            count = entry["count"]
            offset = len(arrays)
            for i in range(count):
                arrays[f"a{offset + i}"] = own[f"a{entry['offset'] + i}"]
            entries[digest] = {**entry, "offset": offset}
    out.write_text(json.dumps(entries))
    np.savez_compressed(out.with_suffix(".npz"), **arrays)
    return len(entries)


def replay(name: str, arguments: dict):
    """The recorded value of ``name`` on ``arguments``; KeyError when it was not recorded."""
    global _LOADED
    if _LOADED is None:
        if not DATA.exists():
            raise KeyError(name)
        _LOADED = (json.loads(DATA.read_text()), np.load(ARRAYS, allow_pickle=False))
    entries, npz = _LOADED
    digest = key(name, arguments)
    entry = entries.get(digest) if digest else None
    if entry is None or entry["name"] != name:
        raise KeyError(name)
    own = [npz[f"a{entry['offset'] + i}"] for i in range(entry["count"])]
    for name_, after in values.decode(entry["tree"]["after"], own).items():
        values.sync(arguments[name_], after)  # a running mean updated in place, a generator's draws
    return values.decode(entry["tree"]["value"], own)
