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
from .wakeup import FolderWatch

#: How long one call into the student's kernel may take (seconds) before it is interrupted.
CALL_TIMEOUT = 25.0
#: How long the judge waits for the student's kernel to stop answering after a graded cell.
PAUSE_SECONDS = 2.0


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

    def judged_seconds(self, args: tuple, kwargs: dict):
        judge = self._judge
        messaging, called_back = judge.messaging, judge.called_back
        start = time.perf_counter()
        value = judge.call(self, args, kwargs)
        wall = time.perf_counter() - start
        messaging, called_back = judge.messaging - messaging, judge.called_back - called_back
        # the student's kernel does the other half of the messaging: as much again, about
        return max(0.0, wall - called_back - 2 * messaging), value

    @contextmanager
    def judged_references(self, names, extra):
        self._judge.swaps.append((dict(names), dict(extra)))
        try:
            yield
        finally:
            self._judge.swaps.pop()



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
        self.functions: dict[int, object] = {}   # the judge's functions the current call may call back
        self._depth = 0
        self.student_code: list[str] = []   # the student's cells above the graded one (own_work)
        # seconds this kernel spent on messages (writing, reading, coding) and on the functions
        # of its own that the student's code called back: not the student's (:meth:`Remote.judged_seconds`)
        self.messaging = self.called_back = 0.0
        self._loop: str | None = None   # the msg_id of the student kernel's answering loop, while it runs
        self._watch = FolderWatch(self.exchange)   # wakes the waits below when an answer lands
        # the longest wait between looks; with the watch only a loop that ended (a kernel
        # message, not a file) is noticed by looking
        self._longest = 0.002 if self._watch.active else 0.0005

    def close(self) -> None:
        """Stop the channels to the student's kernel (their threads keep a process alive)."""
        self._watch.close()
        self.kc.stop_channels()

    # --- requests --------------------------------------------------------------------------------

    def request(self, message: dict, arrays: list | None = None):
        arrays = [] if arrays is None else arrays
        if message.get("op") not in protocol.OPS:
            raise ValueError(f"not an op of the judge's protocol: {message.get('op')!r}")
        path = self._request_path()
        start = time.perf_counter()
        codec.write(path, message, arrays)
        self._serve()
        self.messaging += time.perf_counter() - start
        self._wait(path)
        start = time.perf_counter()
        try:
            return self._reply(path)
        finally:
            self.messaging += time.perf_counter() - start

    def _request_path(self) -> Path:
        """A new request's file: numbered, so the student's kernel answers requests in order."""
        return self.exchange / f"{protocol.REQUEST}{next(self.count):08d}-{uuid.uuid4().hex}.json"

    def _reply(self, path: Path):
        reply_path = path.with_name(path.name + protocol.REPLY_SUFFIX)
        try:
            tree, reply_arrays = codec.read(reply_path)
        except (OSError, ValueError) as exc:
            raise StudentKernelError("the student's kernel sent no usable answer "
                                     f"({type(exc).__name__}: {exc})") from None
        finally:
            for leftover in (path, reply_path):
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
        # no reference goes by name (the student's kernel holds none): every function of the
        # judge's goes as one it calls back
        return codec.encode(value, arrays, lambda v: self._handle_node(v, arrays), lambda v: None)

    def _serve(self) -> None:
        """Have the student's kernel answer requests (:func:`.server.serve_loop`) unless it does."""
        if self._loop is None:
            self._loop = self.kc.execute(protocol.loop_code(str(self.exchange)), silent=True,
                                         store_history=False, allow_stdin=False)

    def pause(self, within: float = PAUSE_SECONDS) -> None:
        """The end of a graded cell: have the student's kernel stop answering now, so that the
        notebook's next cell runs at once rather than after the loop's idle time
        (:data:`protocol.LOOP_IDLE`). Nothing happens if the loop has ended already; a kernel
        that does not answer ``within`` seconds (dead, or busy) is left as it is (its loop ends
        by itself; the next request starts a new one). Never raises for the student's side."""
        if self._loop is None or self._loop_ended() is not None:
            return
        path = self._request_path()
        codec.write(path, {"op": "pause"}, [])
        reply = path.with_name(path.name + protocol.REPLY_SUFFIX)
        deadline = time.monotonic() + within
        while not reply.exists() and time.monotonic() < deadline and self._loop_ended() is None:
            self._watch.wait(self._longest)
        self._loop = None   # the next request starts a new loop (the old one's reply is ignored)

    def _loop_ended(self) -> str | None:
        """The status of the student kernel's answering loop if it has ended since last asked
        ("ok": it went idle; "error", "aborted": it was interrupted or broken), else None."""
        ended = None
        while True:
            try:
                msg = self.kc.shell_channel.get_msg(timeout=0)
            except Exception:  # queue.Empty: nothing more has come
                return ended
            if self._loop is not None and msg.get("parent_header", {}).get("msg_id") == self._loop:
                self._loop, ended = None, str(msg.get("content", {}).get("status", "error"))

    def _wait(self, path: Path) -> None:
        """Wait for the answer to the request ``path``, answering the callbacks of the student's
        code meanwhile."""
        reply = path.with_name(path.name + protocol.REPLY_SUFFIX)
        deadline = time.monotonic() + self.timeout
        pause = 0.00005
        while not reply.exists():
            if time.monotonic() > deadline:
                self._interrupt()
                raise StudentKernelError(f"the student's code did not return within {self.timeout:g} s")
            for callback in protocol.waiting(self.exchange, protocol.CALLBACK_FILE):
                self._answer(self.exchange / callback)
            ended = self._loop_ended()
            if ended is not None and not reply.exists():
                if ended != "ok":   # the loop broke before it answered: _reply says so
                    return
                self._serve()    # it went idle just before the request came: start it again
            self._watch.wait(pause)
            pause = min(2 * pause, self._longest)

    def _answer(self, path: Path) -> None:
        """Run one of the judge's functions that the student's code called (a checker passed
        it, e.g. the f of a numerical gradient) on the arguments it sent."""
        start, called_back = time.perf_counter(), self.called_back
        try:
            self._answer_call(path)
        finally:  # all of it is the judge's time; what is not the function itself, messaging
            self.messaging += time.perf_counter() - start - (self.called_back - called_back)

    def _answer_call(self, path: Path) -> None:
        arrays: list = []
        try:
            tree, args_arrays = codec.read(path)
            path.unlink(missing_ok=True)
            fn = self.functions.get(int(tree["fn"]))
            if fn is None:
                raise LookupError("this function of the grader's was given to an earlier call, "
                                  "and answers only while that call runs")
            resolve = lambda node: Remote(self, node) if node.get("k") == "handle" else _refuse(node)  # noqa: E731
            args = codec.decode(tree["args"], args_arrays, resolve)
            kwargs = codec.decode(tree["kwargs"], args_arrays, resolve)
            start = time.perf_counter()
            try:
                value = fn(*args, **kwargs)
            finally:
                self.called_back += time.perf_counter() - start
            new_args, new_kwargs = codec.left_as(args, kwargs)  # and what it changed in its arguments
            reply = {"ok": self._encode(value, arrays), "args": self._encode(new_args, arrays),
                     "kwargs": self._encode(new_kwargs, arrays)}
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

    def call(self, fn: Remote, args: tuple, kwargs: dict):
        """Run the student's ``fn`` on copies of ``args`` and ``kwargs`` in the student's kernel
        and sync what it changed in them back. The references of an isolated check (the
        exercises ``fn`` builds on) go with it as functions of the judge's that the student's
        code calls back (the student's kernel holds no reference, :func:`..course.distribution.grading_copy`);
        they, like every function of the judge's the call is given, answer only while it runs."""
        from ...reference import _original

        arrays: list = []
        swap, extra = self.swaps[-1] if self.swaps else ({}, {})
        extra = {**{name: _original(ref) for name, ref in swap.items()}, **extra}
        encode = lambda v: self._encode(v, arrays)  # noqa: E731
        self._depth += 1
        start = time.perf_counter()
        try:
            message = {"op": "call", "fn": fn._node, "args": encode(list(args)), "kwargs": encode(dict(kwargs)),
                       "extra": encode(dict(extra)), "return_args": True}
            self.messaging += time.perf_counter() - start
            result = self.request(message, arrays)
        finally:
            self._depth -= 1
            if not self._depth:  # a judge's function the student's code kept answers no more
                self.functions.clear()
        value, new_args, new_kwargs = result
        codec.sync_arguments(args, kwargs, new_args, new_kwargs)
        for local in (*args, *kwargs.values()):  # the student's code may have changed a model
            if codec.is_module(local) and hasattr(local, "pull"):  # a mirror.RemoteModule
                local.pull()
        return value

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


_ACTIVE: Judge | None = None


def preload(modules: list[str]) -> None:
    """Import ``modules`` (the instructor's, named by the notebook's import statements) as the
    judge boots, binding no name; one that fails is left for its import statement to report."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def install(connection: dict, exchange: str, timeout: float = CALL_TIMEOUT) -> Judge:
    """Start judging in this kernel: whether an answer uses a reference is read from the
    student's source (:attr:`Judge.student_code`, set before each graded cell)."""
    global _ACTIVE
    from ... import reference
    from . import own_work

    _ACTIVE = Judge(connection, exchange, timeout)
    reference.set_uses(lambda names: own_work.used(_ACTIVE.student_code, names))
    return _ACTIVE


def active() -> Judge | None:
    return _ACTIVE
