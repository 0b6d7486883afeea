"""The judge: graded tests run in a kernel of their own that never runs the student's code.

Plain nbgrader runs the hidden tests in the student's kernel, after the student's cells, so an
answer cell can change what the tests rely on (numpy's comparisons, the checkers, builtins,
IPython's hooks) and earn marks with wrong answers. Under `coursekit autograde` each graded
cell runs instead in a second, clean kernel (the judge). There, the test's names are bound to
what the student's kernel holds: numbers, arrays and tensors are *copied* over; functions,
classes and other objects stay in the student's kernel as :class:`Remote` handles, and calling
one runs it there (:mod:`.server`) and copies the result back. Only values cross, in a format
that holds no code (:mod:`coursekit.values`; every message is listed in :mod:`.protocol`), so whatever the
student's code does to its own kernel, the comparisons are made by the judge's numpy and the
judge's checkers.
"""
from __future__ import annotations

import builtins
import itertools
import time
import uuid
from contextlib import contextmanager
from pathlib import Path


from ...checks.student import Judged
from ... import values as codec
from . import protocol

#: How long one call into the student's kernel may take (seconds) before it is interrupted.
CALL_TIMEOUT = 25.0


class RemoteError(Exception):
    """An exception raised by the student's code in the student's kernel."""

    where = ""


_ERRORS: dict[str, type] = {}


#: Exceptions of the student's code that are also caught as the built-in of that name (so a
#: checker's ``getattr(obj, name, default)`` or ``except ValueError`` works as in one kernel).
_BUILTIN_ERRORS = ("AttributeError", "KeyError", "IndexError", "ValueError", "TypeError", "RuntimeError",
                   "ZeroDivisionError", "AssertionError", "NameError", "LookupError", "ArithmeticError",
                   "OverflowError")


def _remote_error(kind: str, message: str, where: str) -> Exception:
    if kind == "NotImplementedError":
        return NotImplementedError(message)
    if not kind.isidentifier():
        kind = "Error"
    if kind not in _ERRORS:
        bases = (RemoteError, getattr(builtins, kind)) if kind in _BUILTIN_ERRORS else (RemoteError,)
        _ERRORS[kind] = type(kind, bases, {})
    cls = _ERRORS[kind]
    exc = cls(message)
    exc.where = where
    return exc


class StudentKernelError(RuntimeError):
    """The student's kernel did not answer (it hung, died, or broke the bridge)."""


class Remote(Judged):
    """An object in the student's kernel: call it, read its attributes; a checker asks it the
    questions of :class:`coursekit.checks.student.Judged`."""

    def __init__(self, judge: "Judge", node: dict):
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_node", node)

    @property
    def __name__(self) -> str:
        return self._node["name"]

    def __call__(self, *args, **kwargs):
        return self._judge.call(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._judge.request({"op": "getattr", "obj": self._node, "name": name})

    def __repr__(self) -> str:
        return f"<{self._node['kind']} {self._node['name']} in the student's kernel>"

    # --- what a checker asks (coursekit.checks.student.Judged) -----------------------------------

    def judged_type(self) -> str:
        return {"class": "type", "function": "function"}.get(self._node["kind"], self._node["name"])

    def judged_mro(self) -> tuple[str, ...]:
        return tuple(self._node.get("mro") or ())

    @contextmanager
    def judged_references(self, names, extra):
        self._judge.swaps.append((dict(names), dict(extra)))
        try:
            yield
        finally:
            self._judge.swaps.pop()

    def judged_count_lines(self, args: tuple, kwargs: dict):
        try:
            return self._judge.call(self, args, kwargs, op="count_lines")
        except (RemoteError, NotImplementedError):
            return None


def _refuse(node):
    raise codec.WireError("the student's kernel sent an object the judge does not hold")


class Unsent:
    """What a name of the student's kernel is bound to when its value could not be sent to the
    judge (too large, or the student's code raised while it was read): every use raises a
    CheckError that says so, so only the tests that read it fail."""

    _message = "this value could not be sent to the grader"

    def __init__(self, name: str, reason: str):
        object.__setattr__(self, "_message", f"{name} could not be sent to the grader: {reason}")

    def _fail(self, *args, **kwargs):
        from ...checks import CheckError

        raise CheckError(self._message)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and numpy probe these: not there
            raise AttributeError(name)
        self._fail()

    __call__ = __getitem__ = __setitem__ = __iter__ = __len__ = __bool__ = __float__ = __int__ = _fail
    __array__ = __index__ = __abs__ = __neg__ = __pos__ = __round__ = __format__ = __hash__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _fail
    __matmul__ = __rmatmul__ = __pow__ = __rpow__ = __floordiv__ = __mod__ = _fail
    __copy__ = __deepcopy__ = __reduce__ = __reduce_ex__ = _fail

    def __repr__(self) -> str:
        return f"<unsent: {self._message}>"


class Judge:
    """The judge kernel's line to the student's kernel."""

    def __init__(self, connection: dict, exchange: str, timeout: float = CALL_TIMEOUT):
        from jupyter_client import BlockingKernelClient

        self.exchange = Path(exchange)
        self.timeout = timeout
        self.kc = BlockingKernelClient()
        self.kc.load_connection_info(connection)
        self.kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=True)
        self.count = itertools.count()
        self.swaps: list[tuple[dict, dict]] = []
        self.bound: set[str] = set()
        self.functions: dict[int, object] = {}

    def close(self) -> None:
        """Stop the channels to the student's kernel (their threads keep a process alive)."""
        self.kc.stop_channels()

    # --- requests --------------------------------------------------------------------------------

    def request(self, message: dict, arrays: list | None = None):
        arrays = [] if arrays is None else arrays
        if message.get("op") not in protocol.OPS:
            raise ValueError(f"not an op of the judge's protocol: {message.get('op')!r}")
        path = self.exchange / f"{protocol.REQUEST}{uuid.uuid4().hex}-{next(self.count)}.json"
        codec.write(path, message, arrays)
        msg_id = self.kc.execute(protocol.serve_code(str(path)), silent=True, store_history=False,
                                 allow_stdin=False)
        self._wait(msg_id)
        reply_path = path.with_name(path.name + protocol.REPLY_SUFFIX)
        try:
            tree, reply_arrays = codec.read(reply_path)
        except (OSError, ValueError) as exc:
            raise StudentKernelError("the student's kernel sent no usable answer "
                                     f"({type(exc).__name__}: {exc})") from None
        finally:
            for leftover in (path, path.with_suffix(".npz"), reply_path, reply_path.with_suffix(".npz")):
                leftover.unlink(missing_ok=True)
        if not isinstance(tree, dict):
            raise StudentKernelError("the student's kernel sent a malformed answer")
        if "error" in tree and isinstance(tree["error"], dict):
            err = tree["error"]
            raise _remote_error(str(err.get("type", "Error")), str(err.get("message", "")),
                                str(err.get("where", "")))
        return codec.decode(tree.get("ok"), reply_arrays, self._from_student)

    def request_values(self, op: str, obj: dict, values: dict):
        """A request about the object ``obj`` whose arguments are ``values`` (any values that
        travel)."""
        arrays: list = []
        return self.request({"op": op, "obj": obj, "v": self._encode(values, arrays)}, arrays)

    def _from_student(self, node: dict):
        """A handle the student's kernel sent: a Remote, or, for a module, the judge's copy."""
        if node.get("k") != "handle":
            _refuse(node)
        if node.get("kind") == "module":
            from . import mirror

            return mirror.build(self, node, self.request_values("describe", node, {}))
        return Remote(self, node)

    def _encode(self, value, arrays: list) -> dict:
        return codec.encode(value, arrays, lambda v: self._handle_node(v, arrays), self._reference_name)

    def _wait(self, msg_id: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._interrupt()
                raise StudentKernelError(f"the student's code did not return within {self.timeout:g} s")
            for callback in sorted(self.exchange.glob(f"{protocol.CALLBACK_FILE}*.json")):
                self._answer(callback)
            try:
                reply = self.kc.get_shell_msg(timeout=min(left, 0.002))
            except Exception:  # queue.Empty: keep waiting
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return

    def _answer(self, path: Path) -> None:
        """Run one of the judge's functions that the student's code called (a checker passed
        it, e.g. the f of a numerical gradient) on the arguments it sent."""
        arrays: list = []
        try:
            tree, args_arrays = codec.read(path)
            path.unlink(missing_ok=True)
            path.with_suffix(".npz").unlink(missing_ok=True)
            fn = self.functions[int(tree["fn"])]
            resolve = lambda node: Remote(self, node) if node.get("k") == "handle" else _refuse(node)  # noqa: E731
            args = codec.decode(tree["args"], args_arrays, resolve)
            kwargs = codec.decode(tree["kwargs"], args_arrays, resolve)
            value = fn(*args, **kwargs)
            reply = {"ok": self._encode(value, arrays)}
        except Exception as exc:  # goes back to the student's code as its exception
            arrays = []
            reply = {"error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}
        codec.write(path.with_name(path.name + protocol.REPLY_SUFFIX), reply, arrays)

    def _interrupt(self) -> None:
        msg = self.kc.session.msg("interrupt_request", {})
        self.kc.control_channel.send(msg)

    # --- what the tests use ----------------------------------------------------------------------

    def bind(self, namespace: dict, names: list[str]) -> None:
        """Bind each name the test uses to the student's current value, except the names the
        judge defined itself (the instructor's imports)."""
        silent = ""  # the student's kernel stopped answering: the other names are not asked for
        for name in names:
            if (name in namespace and name not in self.bound) or hasattr(builtins, name):
                continue
            namespace.pop(name, None)
            self.bound.discard(name)
            try:
                if silent:
                    raise StudentKernelError(silent)
                namespace[name] = self.request({"op": "get", "name": name})
            except NameError:
                continue  # not defined there: the test raises NameError, as it would have
            except (RemoteError, codec.WireError, StudentKernelError) as exc:
                namespace[name] = Unsent(name, str(exc))  # costs only the tests that read it
                if isinstance(exc, StudentKernelError):
                    silent = str(exc)
            self.bound.add(name)

    def call(self, fn: Remote, args: tuple, kwargs: dict, op: str = "call"):
        arrays: list = []
        swap, extra = self.swaps[-1] if self.swaps else ({}, {})
        encode = lambda v: self._encode(v, arrays)  # noqa: E731
        message = {"op": op, "fn": fn._node, "args": encode(list(args)), "kwargs": encode(dict(kwargs)),
                   "swap": swap, "extra": encode(dict(extra)), "return_args": op == "call"}
        result = self.request(message, arrays)
        if op != "call":
            return result
        value, new_args, new_kwargs = result
        for local, remote in zip(args, new_args):
            codec.sync(local, remote)
        for key in kwargs:
            codec.sync(kwargs[key], new_kwargs.get(key))
        for local in (*args, *kwargs.values()):  # the student's code may have changed a model
            if codec.is_module(local) and hasattr(local, "pull"):  # a mirror.RemoteModule
                local.pull()
        return value

    def recorded_calls(self, names) -> dict[str, int]:
        return self.request({"op": "calls", "names": list(names)})

    def _handle_node(self, value, arrays: list):
        if isinstance(value, Remote):
            return dict(value._node)
        if codec.is_module(value):
            from . import mirror

            if isinstance(value, mirror.RemoteModule):  # the student's own module, made current
                value.push()
                return dict(value._node)
            from ...models.recipe import recipe_of  # torch is loaded: value is a module

            factory, args, kwargs = recipe_of(value)  # one of the checker's: rebuilt there
            return {"k": "module", "factory": factory, "args": self._encode(list(args), arrays),
                    "kwargs": self._encode(dict(kwargs), arrays),
                    "state": self._encode(mirror.state_of(value), arrays)}
        if callable(value):  # one of the judge's functions: the student's code calls back
            self.functions[id(value)] = value
            return {"k": "judgefn", "id": id(value), "name": getattr(value, "__name__", "function")}
        raise codec.WireError(f"a {type(value).__name__} cannot be sent to the student's kernel")

    @staticmethod
    def _reference_name(value) -> str | None:
        from ...reference import _ORIGINALS

        name = getattr(value, "reference_name", None)
        if isinstance(name, str):
            return name
        for ref_name, original in _ORIGINALS.items():
            if original is value:
                return ref_name
        return None


_ACTIVE: Judge | None = None


def install(connection: dict, exchange: str, timeout: float = CALL_TIMEOUT) -> Judge:
    """Start judging in this kernel: checkers ask the student's kernel which references it
    called."""
    global _ACTIVE
    from ... import reference

    _ACTIVE = Judge(connection, exchange, timeout)
    reference.set_call_counter(lambda name: _ACTIVE.recorded_calls([name])[name])
    return _ACTIVE


def active() -> Judge | None:
    return _ACTIVE
