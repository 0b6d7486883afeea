"""Least privilege for a sandboxed kernel: its own pid namespace, an unprivileged uid, no
new namespaces (:func:`isolate`, called by :func:`.sandbox.enter` before Landlock).

* **pid namespace** (with a mount namespace and a fresh ``/proc``): the kernel sees only its
  own processes, so it cannot signal, trace or read ``/proc/<pid>/environ`` of the grader or of
  other submissions. The process that starts the sandbox stays outside and waits; inside, a
  small init (pid 1) reaps what the student's code forks, and the kernel is its child.
  As root this needs nothing; otherwise it needs unprivileged user namespaces.
* **uid**: a grader running as root starts the kernel as a uid of its own (no passwd entry,
  no groups, the policy's ``uid``: the student's kernel and the judge's get different ones),
  which owns only its scratch folder. Where Landlock confines its files it keeps exactly one
  capability, ``CAP_DAC_READ_SEARCH`` (to read the Python install wherever it lives, which
  Landlock then narrows); without Landlock it keeps none. It cannot renice itself up, change
  owners or mount anything.
* **seccomp**: ``unshare``, ``setns``, ``clone`` with a namespace flag, ``mount`` and its kin,
  ``chroot``, opening files by handle, ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring`` and the kernel keyring fail with EPERM (``clone3`` with ENOSYS, so that the C
  library falls back to ``clone``, whose flags a filter can see). The launcher that installs
  it has one thread, so no thread escapes it.

Each step that this machine refuses (a container without CAP_SYS_ADMIN, a kernel without
unprivileged user namespaces) is left out rather than failing the kernel; :func:`available`
tries them once and says which hold, and the grader's summary names the others.
"""
from __future__ import annotations

import ctypes
import os
import platform
import signal
import struct
import sys
import time
import zlib

_CLONE_NEWNS, _CLONE_NEWCGROUP, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_NAMESPACE_FLAGS = (_CLONE_NEWNS | _CLONE_NEWCGROUP | _CLONE_NEWUTS | _CLONE_NEWIPC | _CLONE_NEWUSER
                    | _CLONE_NEWPID | _CLONE_NEWNET)
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_KEEPCAPS, _PR_CAPBSET_DROP = 1, 4, 8, 24
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _PR_CAP_AMBIENT = 38, 22, 47
_CAP_DAC_READ_SEARCH = 2

#: syscall numbers refused inside the sandbox, and clone / clone3, per architecture
_SYSCALLS = {
    "x86_64": {"audit": 0xC000003E, "clone": 56, "clone3": 435, "refused": {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "io_uring_setup": 425, "add_key": 248,
        "request_key": 249, "keyctl": 250}},
    "aarch64": {"audit": 0xC00000B7, "clone": 220, "clone3": 435, "refused": {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "io_uring_setup": 425, "add_key": 217,
        "request_key": 218, "keyctl": 219}},
}

#: the uids a root grader gives kernels: far above login users, nobody (65534) and the usual
#: subordinate-uid ranges of rootless containers (100000 + 65536 k)
UID_BASE, UID_RANGE = 0x70000000, 1 << 27


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def sandbox_uid(key: str, role: str = "student") -> int:
    """The uid of a kernel of ``role`` ('student' or 'judge') grading the submission whose
    folder is ``key``: the same across its restarts, another for the other role."""
    return UID_BASE + zlib.crc32(f"{role}:{key}".encode()) % UID_RANGE


def _arch() -> dict | None:
    if not sys.platform.startswith("linux") or sys.maxsize <= 2 ** 32:  # a 32-bit Python: other numbers
        return None
    return _SYSCALLS.get(platform.machine())


def _userns_allowed() -> bool:
    try:
        with open("/proc/sys/user/max_user_namespaces") as fh:
            if int(fh.read()) == 0:
                return False
    except (OSError, ValueError):
        return False
    for switch, refusing in (("/proc/sys/kernel/unprivileged_userns_clone", "0"),
                             ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1")):
        try:
            with open(switch) as fh:
                if fh.read().strip() == refusing:
                    return False
        except OSError:
            pass
    return True


_AVAILABLE: dict[str, bool] = {}


def available() -> dict[str, bool]:
    """Which of the module's measures hold on this machine, tried for real once in a fresh
    process (the caller may have threads, so it does not fork itself)."""
    if not _AVAILABLE:
        import subprocess

        linux = sys.platform.startswith("linux")
        tried = False
        if linux:
            try:
                tried = subprocess.run([sys.executable, "-c", f"import {__name__} as p; p._probe()"],
                                       capture_output=True, timeout=60).returncode == 0
            except (OSError, subprocess.SubprocessError):
                tried = False
        _AVAILABLE.update({"unprivileged kernel": linux and (os.geteuid() != 0 or _can_become()),
                           "own pid namespace": tried, "no new namespaces": _arch() is not None})
    return dict(_AVAILABLE)


def _can_become() -> bool:
    """Root that may change its uid (CAP_SETUID, CAP_SETGID in the bounding set)."""
    return {6, 7} <= _bounding_set()


def _bounding_set() -> set[int]:
    try:
        with open("/proc/self/status") as fh:
            line = next(line for line in fh if line.startswith("CapBnd:"))
    except (OSError, StopIteration):
        return set()
    mask = int(line.split()[1], 16)
    return {bit for bit in range(64) if mask >> bit & 1}


def _probe() -> None:
    """Exit 0 if this process can make the namespaces :func:`isolate` makes (a throwaway try)."""
    if not _unshare(os.geteuid() == 0):
        os._exit(1)
    child = os.fork()
    if child == 0:
        try:
            _fresh_proc()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    os._exit(0 if status == 0 else 1)


# --- seccomp ---------------------------------------------------------------------------------------

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38


def _filter(arch: dict) -> list[tuple[int, int, int, int]]:
    """The seccomp program (a list of (code, jt, jf, k)) for ``arch``."""
    deny, enosys = ("ret", _ERRNO | _EPERM), ("ret", _ERRNO | _ENOSYS)
    body = [("ld", 4), ("jne", arch["audit"], "deny"), ("ld", 0), ("jge", 0x40000000, "deny"),
            *[("jeq", nr, "deny") for nr in arch["refused"].values()],
            ("jeq", arch["clone3"], "enosys"), ("jeq", arch["clone"], "clone"),
            ("ret", _ALLOW),
            ("label", "clone"), ("ld", 16), ("jset", _NAMESPACE_FLAGS, "deny"), ("ret", _ALLOW),
            ("label", "deny"), deny, ("label", "enosys"), enosys]
    where, pc = {}, 0
    for op in body:
        if op[0] == "label":
            where[op[1]] = pc
        else:
            pc += 1
    program, pc = [], 0
    for op in body:
        if op[0] == "label":
            continue
        kind, k = op[0], op[1]
        if kind == "ld":
            program.append((_LD_ABS, 0, 0, k))
        elif kind == "ret":
            program.append((_RET, 0, 0, k))
        else:
            jump = where[op[2]] - pc - 1
            code = {"jeq": _JEQ, "jne": _JEQ, "jge": _JGE, "jset": _JSET}[kind]
            program.append((code, 0, jump, k) if kind == "jne" else (code, jump, 0, k))
        pc += 1
    return program


def forbid_namespaces() -> bool:
    """Install the seccomp filter on this process and its children; False where there is none
    for this architecture. Sets no_new_privs (which the filter needs)."""
    arch = _arch()
    if arch is None:
        return False
    program = _filter(arch)
    raw = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _Prog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    libc = _libc()
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _check(libc.prctl(_PR_SET_SECCOMP, 2, ctypes.byref(prog), 0, 0), "prctl(PR_SET_SECCOMP)")
    return True


# --- namespaces and the uid ------------------------------------------------------------------------

def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _unshare(root: bool) -> bool:
    libc = _libc()
    flags = _CLONE_NEWPID | _CLONE_NEWNS | _CLONE_NEWIPC
    if root:
        return libc.unshare(flags) == 0
    if not _userns_allowed():
        return False
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(flags | _CLONE_NEWUSER) != 0:
        return False
    _write("/proc/self/setgroups", "deny")  # (isolate tries all this in a child first)
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    return True


def _exit_code(status: int) -> int:
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _wait_outside(child: int, grader: int = 0) -> None:
    """The process outside the namespace: wait for the sandbox, leave with its exit status.
    The kernel's process group gets Jupyter's signals itself; a SIGTERM aimed at this process
    alone, or the death of ``grader`` (the pid that launched it; default: its parent now),
    ends the whole sandbox: a grader killed while this process started is seen too. (It holds
    the write end of the pipe whose end the init watches.)"""
    grader = grader or os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(_exit_code(status))
        if os.getppid() != grader:  # the grader is gone: so is the kernel
            os.kill(child, signal.SIGKILL)
        time.sleep(0.05)


def _init(kernel: int) -> None:
    """pid 1 of the namespace: reap every orphan, leave when the kernel does. Not dumpable,
    so that the kernel (the same uid) cannot trace it."""
    _libc().prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == kernel:
            os._exit(_exit_code(status))


def _die_with(waiter_alive: int) -> None:
    """Be killed when the waiter outside goes (set after the uid changes, which clears it), and
    leave now if it has already gone (its end of the pipe ``waiter_alive`` is then closed)."""
    _check(_libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    os.set_blocking(waiter_alive, False)
    try:
        gone = os.read(waiter_alive, 1) == b""
    except BlockingIOError:
        gone = False
    os.close(waiter_alive)
    if gone:
        os._exit(1)


def die_with_parent(parent: int) -> None:
    """Be killed when the process ``parent`` (the one that started this one) goes: a grading
    worker when its class run is killed, so that no orphan grades on into the next run's folders.
    Linux only (elsewhere nothing happens)."""
    try:
        _check(_libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # gone before the line above
        os._exit(1)


def _fresh_proc() -> None:
    libc = _libc()
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount(/, private)")
    _check(libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None),
           "mount(/proc)")


def _own_folder(folder: str, uid: int) -> None:
    """Give ``folder`` itself to ``uid``; what is in it the kernel made (as ``uid``). Never a
    walk of the tree as root: the student's kernel may be running and swapping folders for
    links while it went."""
    os.chown(folder, uid, uid, follow_symlinks=False)


def _become(uid: int, keep_reading: bool) -> None:
    """Root -> ``uid`` (gid the same, no groups). With ``keep_reading``, CAP_DAC_READ_SEARCH
    stays, inherited across exec as an ambient capability; every other capability goes."""
    libc = _libc()
    bounding = _bounding_set()
    keep_reading = keep_reading and _CAP_DAC_READ_SEARCH in bounding
    for cap in sorted(bounding):
        if cap != _CAP_DAC_READ_SEARCH or not keep_reading:
            libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # best effort: no_new_privs covers exec anyway
    if keep_reading:
        _check(libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if not keep_reading:
        return

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    keep = 1 << _CAP_DAC_READ_SEARCH
    data = (_Data * 2)(_Data(keep, keep, keep), _Data(0, 0, 0))
    _check(libc.capset(ctypes.byref(_Header(0x20080522, 0)), data), "capset")
    _check(libc.prctl(_PR_CAP_AMBIENT, 2, _CAP_DAC_READ_SEARCH, 0, 0), "prctl(PR_CAP_AMBIENT_RAISE)")


_NAMESPACES_WORK: list[bool] = []   # the answer, once found (a zygote finds it for its kernels)


def _namespaces_work() -> bool:
    """Try the namespaces in a throwaway child (this process has one thread: it may fork)."""
    if not _NAMESPACES_WORK:
        _NAMESPACES_WORK.append(_try_namespaces())
    return _NAMESPACES_WORK[0]


def _try_namespaces() -> bool:
    child = os.fork()
    if child == 0:
        try:
            _probe()
        finally:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    return status == 0


def isolate(uid: int, scratch: str, files_confined: bool, grader: int = 0) -> tuple[list[str], bool]:
    """Shut this process in a pid namespace, as ``uid`` when root (``scratch`` becomes its),
    and forbid new namespaces. Returns only in the process that is to become the kernel; the
    others wait and exit with its status, or end it when ``grader`` (the pid that launched
    this process, if known) goes. Returns (what could not be applied, whether this is in
    namespaces of its own). ``files_confined``: Landlock will narrow what it may read."""
    if not sys.platform.startswith("linux"):
        return ["unprivileged kernel", "own pid namespace", "no new namespaces"], False
    missing = []
    root = os.geteuid() == 0
    become = root and _can_become()
    if root and not become:
        missing.append("unprivileged kernel")
    if become:
        _own_folder(scratch, uid)
    inside = _namespaces_work() and _unshare(root)
    if inside:
        waiter_alive, keep_open = os.pipe()
        child = os.fork()
        if child:
            os.close(waiter_alive)
            _wait_outside(child, grader)
        os.close(keep_open)
        _fresh_proc()
        if become:
            _become(uid, files_confined)
        _die_with(waiter_alive)
        kernel = os.fork()
        if kernel:
            forbid_namespaces()
            _init(kernel)
        if "JPY_PARENT_PID" in os.environ:  # ipykernel: its parent, pid 1, is not an orphan's init
            os.environ["JPY_PARENT_PID"] = "1"
    else:
        missing.append("own pid namespace")
        if become:
            _become(uid, files_confined)
    if not forbid_namespaces():
        missing.append("no new namespaces")
    return missing, inside
