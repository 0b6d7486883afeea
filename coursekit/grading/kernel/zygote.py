"""Kernels forked from a warm process: a submission's kernels start with Python, ipykernel,
numpy, matplotlib, torch, torchvision and timm already imported.

Every graded notebook starts two kernels (the student's and the judge's), and each imported
the same libraries afresh: about 0.8 s for ipykernel, numpy and matplotlib, 2-3 s more where
torch, torchvision and timm are used, of a submission's 4-17 s. The *zygote* is a process that
imports them once, as a kernel would, and then only forks: for each kernel it forks a child
that takes the kernel's environment, standard streams and working folder, shuts itself in
with the kernel's policy exactly as ``python -m coursekit.grading.kernel.sandbox`` does
(:func:`.sandbox.enter`: uid, pid namespace, rlimits, cgroups, seccomp, Landlock) and then
runs ipykernel in that same process instead of executing a new interpreter.

Why nothing of one submission can reach the next: the zygote never runs a student's code, reads
a submission or talks to a kernel; it imports third-party libraries and forks. A child is a
copy of that untouched state (copy-on-write: what a kernel changes is its own), and it is shut
in before any of the notebook's code runs. The child drops every ``coursekit`` module the zygote
needed for the sandbox, so that the kernel imports coursekit as a fresh one would (the
student's: the grading copy of :mod:`..course.distribution`); it reseeds numpy's global
generator (Python's ``random`` reseeds itself in a forked child). Only the grader may ask for a
kernel: the zygote's socket is its owner's alone (0600 in a 0700 folder), and it is used only
where each kernel runs as a uid of its own (a root grader), as with the pool's fork server.

What differs from a fresh interpreter, on purpose: the libraries above are in ``sys.modules``
before the first cell; the data-segment limit (``Limits.memory_mb``) counts from what the
zygote had loaded (about 0.9 GB of torch and the rest), so the notebook's own allocations get
the same budget either way; all kernels of one zygote share Python's string hash seed.

A grading process starts two zygotes, one for students' kernels and one for judges' (so
that no student's kernel shares a memory layout, stack canary or hash seed with the kernel
that handles its values); the workers it starts find them through :data:`ADDRESS` and
:data:`JUDGE_ADDRESS` in their environment, and they end with it. An ended kernel stays
unreaped until its grader has waited for it, so that its pid (its process group, which
jupyter_client signals) is not given to another submission's kernel meanwhile. A kernel whose
environment differs in what the libraries read as they load (:data:`IMPORT_ENV`), or whose
command is not ipykernel's, is started the old way.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

#: The environment variables that tell a grading worker where its grader's zygotes listen: one
#: for students' kernels, one for judges' (so that no student's kernel shares a memory layout,
#: hash seed or stack canary with a judge, which handles the student's values).
ADDRESS, JUDGE_ADDRESS = "COURSEKIT_ZYGOTE", "COURSEKIT_ZYGOTE_JUDGE"
ROLES = {"student": ADDRESS, "judge": JUDGE_ADDRESS}

#: What a kernel graded by nbgrader finds in its environment (nbgrader sets it as it autogrades).
GRADED = {"NBGRADER_EXECUTION": "autograde"}

#: What the zygote imports (third-party only: never coursekit's references or checks).
WARM = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
        "numpy", "numpy.random", "matplotlib", "matplotlib.pyplot", "PIL.Image", "tqdm.auto", "torch",
        "torch.nn.functional", "torchvision", "torchvision.transforms.v2", "timm")

#: Variables these libraries read as they load (threads, matplotlib's backend, warnings): a
#: kernel is forked only from a zygote started with the same values.
IMPORT_ENV = ("MPLBACKEND", "PYTHONWARNINGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "NBGRADER_EXECUTION",
              "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
#: ... and every variable that starts with one of these (tqdm's defaults, Hugging Face's, torch's).
IMPORT_PREFIXES = ("TQDM_", "HF_", "TORCH_")

#: The file the zygote leaves beside its socket once it has imported all of :data:`WARM`.
WARMED = "warm"

#: How long a zygote may take to listen once started, and a kernel launch to be answered (it
#: forks between imports, and importing torch can take seconds on a busy machine).
LISTEN_SECONDS, READY_SECONDS = 30.0, 60.0


def usable() -> bool:
    """Whether kernels may be forked here: Linux, a root grader whose kernels get uids of their
    own (which cannot open the zygote's socket)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or os.environ.get("COURSEKIT_NO_ZYGOTE"):
        return False
    from . import privileges

    return privileges._can_become()


def import_env(env: dict[str, str]) -> dict[str, str]:
    """The part of a kernel's environment that its libraries read as they load."""
    return {name: value for name, value in env.items()
            if name in IMPORT_ENV or name.startswith(IMPORT_PREFIXES)}


# --- the grader's side ---------------------------------------------------------------------------

_started: dict[tuple[str, str], "Zygote"] = {}   # by role and import environment
_failed: set[tuple[str, str]] = set()
_starting = threading.Lock()


class Zygote:
    """A running zygote (a child of this process) and the address it listens on."""

    def __init__(self, env: dict[str, str]):
        self.folder = tempfile.mkdtemp(prefix="coursekit-zygote-")   # 0700
        self.address = os.path.join(self.folder, "socket")
        home = os.path.join(self.folder, "home")
        os.mkdir(home)
        # its own environment is what a kernel's would be as the libraries load: a kernel
        # reading /proc/self/environ sees only this (and its own in os.environ)
        base = {k: v for k, v in os.environ.items()
                if k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH")}
        own = {**base, **import_env(env), "HOME": home, "MPLCONFIGDIR": os.path.join(home, ".matplotlib")}
        self.owner = os.getpid()   # a forked copy of this process must not stop it
        self.log = open(os.path.join(self.folder, "zygote.log"), "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.address, str(os.getpid())], env=own, cwd=home,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def listening(self) -> bool:
        """Wait until it listens (a fraction of a second: it imports the libraries after); False
        if it ended first, or does not within :data:`LISTEN_SECONDS`."""
        deadline = time.monotonic() + LISTEN_SECONDS
        while not os.path.exists(self.address):
            if not self.alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        if os.getpid() != self.owner:
            return
        if self.alive():
            self.process.kill()
            self.process.wait()
        self.log.close()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def ensure(env: dict[str, str], role: str = "student") -> str:
    """The address of this process's zygote for ``role``'s kernels (``student`` or ``judge``)
    with environment ``env`` (on top of this process's; started now if there is none yet); ''
    where kernels are not forked (:func:`usable`)."""
    if not usable():
        return ""
    env = {**os.environ, **env}   # a kernel's environment is its grader's and its own
    key = json.dumps(import_env(env), sort_keys=True)
    with _starting:   # a Dask worker's task threads ask at once
        if (role, key) in _failed:
            return ""
        zygote = _started.get((role, key))
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.stop()
            zygote = _started[(role, key)] = Zygote(env)
            if not zygote.listening():   # it could not start: kernels start the old way
                _failed.add((role, key))
                zygote.stop()
                del _started[(role, key)]
                return ""
    return f"{zygote.address}#{key}"


def for_grading(env: dict[str, str]) -> dict[str, str]:
    """The environment variables that point a grading worker at this process's zygotes for
    kernels graded with ``env`` (started now if need be); {} where kernels are not forked."""
    graded = {**env, **GRADED}
    found = {variable: ensure(graded, role) for role, variable in ROLES.items()}
    return {variable: address for variable, address in found.items() if address}


def started(address: str) -> "Zygote | None":
    """The running zygote of this process that listens at ``address``."""
    path = address.partition("#")[0]
    return next((z for z in _started.values() if z.address == path), None)


def wait_warm(address: str, timeout: float = 120) -> bool:
    """Wait until the zygote at ``address`` has imported all of :data:`WARM` (kernels forked
    before then import the rest themselves); False if it has not within ``timeout``."""
    warmed = os.path.join(os.path.dirname(address.partition("#")[0]), WARMED)
    deadline = time.monotonic() + timeout
    while not os.path.exists(warmed):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@atexit.register
def _stop_all() -> None:
    for zygote in _started.values():
        zygote.stop()
    _started.clear()


class ForkedKernel:
    """What jupyter_client's provisioner needs of a kernel's process (``subprocess.Popen``'s
    ``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``, ``terminate``), for a kernel the
    zygote forked. Its exit status comes through the connection to the zygote. While the
    connection is open, the zygote keeps the ended kernel's pid from being reused; ``wait``
    (after which the provisioner signals it no more) closes it. If this process dies, the
    connection closes and the zygote kills the kernel."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, connection: socket.socket, stdin_writer: int):
        self.pid, self.returncode = pid, None
        self._connection, self._stdin_writer = connection, stdin_writer

    def _read_status(self, timeout: float | None) -> bool:
        if self.returncode is not None:
            return True
        ready, _, _ = select.select([self._connection], [], [], timeout)
        if not ready:
            return False
        data = b""
        try:
            while not data.endswith(b"\n"):
                part = self._connection.recv(64)
                if not part:
                    break
                data += part
        except OSError:
            pass
        try:
            self.returncode = int(data.strip())
        except ValueError:   # the zygote went (and its kernels with it)
            self.returncode = -signal.SIGKILL
        return True

    def _release(self) -> None:
        self._connection.close()
        if self._stdin_writer >= 0:
            os.close(self._stdin_writer)
            self._stdin_writer = -1

    def poll(self) -> int | None:
        self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._read_status(timeout):
            raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
        self._release()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:
            pass


def launch(address: str, policy_file: str, argv: list[str], env: dict[str, str],
           stdout: int | None, stderr: int | None) -> ForkedKernel | None:
    """Ask the zygote at ``address`` for a kernel ``ipykernel_launcher ARGV`` shut in by the
    policy in ``policy_file``; None where it cannot give one (then start it the old way)."""
    path, _, key = address.partition("#")
    try:   # the kernel's environment once the sandbox has added the policy's
        policy_env = json.loads(open(policy_file).read())["env"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if json.dumps(import_env({**env, **policy_env}), sort_keys=True) != key:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stdin_reader, stdin_writer = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        connection.settimeout(READY_SECONDS)
        connection.connect(path)   # it listened before its address was handed out (gone: refused)
        request = json.dumps({"policy": policy_file, "argv": argv, "env": env}).encode()
        fds = [stdin_reader, devnull if stdout is None else stdout, devnull if stderr is None else stderr]
        socket.send_fds(connection, [len(request).to_bytes(4, "big")], fds)
        connection.sendall(request)
        reply = b""
        while not reply.endswith(b"\n"):
            part = connection.recv(64)
            if not part:
                raise OSError("the zygote closed the connection")
            reply += part
        pid = int(reply)
        connection.settimeout(None)
    except (OSError, ValueError):
        connection.close()
        os.close(stdin_writer)
        return None
    finally:
        os.close(stdin_reader)
        os.close(devnull)
    return ForkedKernel(pid, connection, stdin_writer)


# --- the zygote ----------------------------------------------------------------------------------

def _memory_data_mb() -> int:
    """This process's data segment (what RLIMIT_DATA counts), in MB, rounded up."""
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmData:"))
    return -(-kb // 1024)


def _receive_fds(connection: socket.socket) -> tuple[int, list[int]]:
    """The request's size and its three standard streams (the request itself is read by the
    forked child, so that it never passes through the zygote's memory: nothing of one
    submission, not even its folder's name, is left there for the next kernel to find)."""
    head, fds, _, _ = socket.recv_fds(connection, 4, 3)
    if len(head) != 4 or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise OSError("not a kernel request")
    return int.from_bytes(head, "big"), fds


def _read_request(connection: socket.socket, size: int) -> dict:
    data = b""
    while len(data) < size:
        part = connection.recv(size - len(data))
        if not part:
            raise OSError("short request")
        data += part
    return json.loads(data)


def serve(address: str, grader: int) -> None:
    """The zygote's life: end with ``grader`` (its parent; watched, not a parent-death signal,
    which fires when the *thread* that started it ends: a Dask worker's task thread); fork a
    kernel for each request on ``address`` and report each kernel's exit status on its
    request's connection; between requests, import
    :data:`WARM` one module at a time (a kernel asked for early has fewer of them ready, and
    imports the rest itself, as a fresh one would)."""
    import importlib

    from . import privileges

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    listener.bind(address)
    os.umask(old)
    listener.listen(64)
    if privileges.available().get("own pid namespace"):   # found once, not in every kernel
        privileges._namespaces_work()
    wake_reader, wake_writer = os.pipe()
    os.set_blocking(wake_writer, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_writer)
    kernels: dict[int, socket.socket] = {}   # running, by pid: the connection of its grader
    ended: dict[int, socket.socket] = {}     # ended and reported, not yet reaped (see _report_ended)
    to_import = list(WARM)
    while True:
        ready, _, _ = select.select([listener, wake_reader, *kernels.values(), *ended.values()], [], [],
                                    0 if to_import else 0.5)
        if os.getppid() != grader:   # the grader is gone: so are its kernels, and this process
            for pid in kernels:
                _kill(pid)
            os._exit(0)
        if wake_reader in ready:
            os.read(wake_reader, 4096)
        _report_ended(kernels, ended)
        for pid, connection in list(kernels.items()):
            if connection in ready:   # its grader closed the connection (it died): the kernel goes
                _kill(pid)
        for pid, connection in list(ended.items()):
            if connection in ready:   # its grader is done with it: its pid may now be reused
                _reap(pid)
                connection.close()
                del ended[pid]
        if listener in ready:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                size, fds = _receive_fds(connection)
            except (OSError, ValueError):
                connection.close()
                continue
            pid = _fork_kernel(size, fds, listener, connection, [*kernels.values(), *ended.values()],
                               wake_reader, wake_writer)
            for fd in fds:
                os.close(fd)
            try:
                if not pid:
                    raise OSError("no kernel")
                connection.sendall(f"{pid}\n".encode())
                kernels[pid] = connection
            except OSError:   # its grader gave up waiting: the kernel goes at once
                if pid:
                    _kill(pid)
                    _reap(pid)
                connection.close()
        elif to_import:
            name = to_import.pop(0)
            try:
                importlib.import_module(name)
            except Exception as exc:   # a kernel imports what it needs itself
                print(f"zygote: could not import {name}: {exc}", file=sys.stderr, flush=True)
            if not to_import:
                open(os.path.join(os.path.dirname(address), WARMED), "w").close()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _report_ended(kernels: dict[int, socket.socket], ended: dict[int, socket.socket]) -> None:
    """Send the exit status of each kernel that ended to its grader, and keep the kernel's
    process unreaped (a zombie) until the grader closes the connection: until then its pid,
    which is also its process group, cannot be given to another process. (jupyter_client
    signals a kernel's group without asking whether it is still there: an interrupt and a kill
    when it shuts a kernel down. A pid reused by another submission's kernel would get them.)"""
    for pid, connection in list(kernels.items()):
        try:
            done = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            done = None
        if done is None:
            continue
        del kernels[pid]
        code = done.si_status if done.si_code == os.CLD_EXITED else -done.si_status
        try:
            connection.sendall(f"{code}\n".encode())
            ended[pid] = connection
        except OSError:   # no grader to tell
            _reap(pid)
            connection.close()


def _fork_kernel(size: int, fds: list[int], listener: socket.socket,
                 connection: socket.socket, held: list[socket.socket], *pipes: int) -> int:
    """Fork the kernel asked for on ``connection`` (a request of ``size`` bytes follows); in
    the zygote, return its pid once it has read the request and leads a session of its own (0
    if it could not start; it has then been reaped). The child never returns."""
    started_reader, started_writer = os.pipe()
    pid = os.fork()
    if pid:
        os.close(started_writer)
        ok = os.read(started_reader, 1) == b"1"   # b"": it ended (it closes this only at its end)
        os.close(started_reader)
        if not ok:
            _reap(pid)
        return pid if ok else 0
    code = 1
    try:
        os.close(started_reader)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request = _read_request(connection, size)
        os.setsid()   # as jupyter_client starts kernels: Jupyter signals the whole group
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for one in (listener, connection, *held):   # never the kernel's
            one.detach()
        os.write(started_writer, b"1")
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)
        code = _become_kernel(request, _memory_data_mb())
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _become_kernel(request: dict, preloaded: int) -> int:
    """In the forked child: the kernel's environment, the sandbox, a fresh coursekit, ipykernel."""
    from . import sandbox

    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]   # the zygote's
    os.environ.clear()
    os.environ.update(request["env"])
    policy = sandbox.Policy.load(request["policy"])
    policy.grader = os.getppid()   # the zygote: gone, the sandbox goes too
    policy.limits.memory_mb += preloaded   # the notebook's own allocations get the whole budget
    sandbox.enter(policy)
    for name in [name for name in sys.modules if name == "coursekit" or name.startswith("coursekit.")]:
        del sys.modules[name]
    # sys.path as ``python -m ipykernel_launcher`` here would have it: the folder, PYTHONPATH, the rest
    sys.path[0] = os.getcwd()
    if sys.path[1:1 + len(inherited)] == inherited:
        del sys.path[1:1 + len(inherited)]
    sys.path[1:1] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    import importlib

    importlib.invalidate_caches()
    import tempfile

    tempfile.tempdir = None   # found again from this environment (TMPDIR), as a fresh one would
    if "numpy.random" in sys.modules:   # a fresh interpreter seeds it from the system's entropy
        sys.modules["numpy.random"].seed()
    import ipykernel_launcher
    from ipykernel import kernelapp

    sys.argv = [ipykernel_launcher.__file__, *request["argv"]]
    kernelapp.launch_new_instance(argv=request["argv"])
    return 0


def kernel_argv(cmd: list[str]) -> list[str] | None:
    """The arguments of a ``python -m ipykernel_launcher ...`` command run by this Python (None
    for any other command: such a kernel is started the old way)."""
    if len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"] and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable):
        return list(cmd[3:])
    return None


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
