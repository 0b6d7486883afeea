"""Run a student's kernel shut in: its own scratch folder, resource limits, no network.

``python -m coursekit.grading.kernel.sandbox POLICY.json -- CMD...`` applies the policy to itself and
then becomes ``CMD`` (the kernel). The grader writes the policy; the student's code never sees
anything but what the policy lets through:

* **files** (Linux Landlock, kernel 5.13+): it may write only inside its scratch folder (and
  /dev/null); it may read only what running Python needs (the system, the Python install and
  its packages, the ``coursekit`` package) plus the folders the policy names (the prepared
  data). The course directory, the gradebook, the source notebooks with their hidden tests,
  other students' submissions and the instructor's home are neither readable nor writable.
* **network** (Landlock ABI 4+): no TCP connections; it may bind only the kernel's own ports.
* **signals** (Landlock ABI 6+): it cannot signal processes outside its sandbox (the grader).
* **privileges** (:mod:`.privileges`): its own pid namespace and ``/proc``, a uid of its own
  when the grader is root, and no way to make new namespaces or mounts.
* **resources** (rlimits): CPU seconds, memory (data segment), the size of any file it writes,
  open files; processes through a pids cgroup when running as root (root ignores
  RLIMIT_NPROC), else RLIMIT_NPROC. As root, each submission's processes also form one cpu
  cgroup, so a submission that runs many busy threads slows only itself, not the submissions
  graded beside it. The grader also watches the scratch folder's size and the
  wall time, and kills the whole process tree when it is done.

:func:`capabilities` says which of these this machine enforces; where Landlock is missing
(macOS, old kernels) the limits still apply and the grader says that files are not isolated.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import privileges

# --- the policy ---------------------------------------------------------------------------------


@dataclass
class Limits:
    """What one submission's kernel may use. Units are in the names."""
    cpu_seconds: int = 300         # CPU time per kernel process (all its threads)
    memory_mb: int = 4096          # data segment per process (heap and anonymous maps)
    file_mb: int = 64              # the largest file it may write
    disk_mb: int = 256             # everything in its scratch folder together (watched)
    processes: int = 128           # processes and threads of the sandbox together
    open_files: int = 1024
    output_kb: int = 1024          # notebook output kept per submission; the rest is dropped
    notebook_seconds: int = 600    # wall time for the whole notebook; later cells are not run


@dataclass
class Policy:
    scratch: str                            # its writable folder (and working directory)
    write: list[str] = field(default_factory=list)  # other writable folders (the judge's exchange)
    read: list[str] = field(default_factory=list)   # extra readable folders or files
    ports: list[int] = field(default_factory=list)  # TCP ports it may bind (the kernel's)
    connect: list[int] = field(default_factory=list)  # TCP ports it may connect to
    limits: Limits = field(default_factory=Limits)
    cgroup: str = ""                        # a pids cgroup folder to join, made by the grader
    cpu_group: str = ""                     # a cpu cgroup (v1) to join: a fair share of the cores
    env: dict[str, str] = field(default_factory=dict)
    uid: int = 0                            # the kernel's uid when the grader is root (0: from scratch)
    package: str = ""                       # a folder holding the coursekit the kernel imports instead
    #                                         of the grader's, which it then cannot read (Landlock)
    grader: int = 0                         # the pid that launches it: gone, the sandbox goes too
    #                                         (0: whichever process started it)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        raw = json.loads(Path(path).read_text())
        raw["limits"] = Limits(**raw["limits"])
        return cls(**raw)


# --- Landlock through its three system calls ---------------------------------------------------

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446   # the same on every architecture
_RULE_PATH, _RULE_PORT = 1, 2
_FS = {name: 1 << bit for bit, name in enumerate(
    ["execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file", "make_char",
     "make_dir", "make_reg", "make_sock", "make_fifo", "make_block", "make_sym", "refer",
     "truncate", "ioctl_dev"])}
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
              5: (1 << 16) - 1}
_FILE_ONLY = _FS["execute"] | _FS["write_file"] | _FS["read_file"] | _FS["truncate"] | _FS["ioctl_dev"]
_NET_BIND, _NET_CONNECT = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2
_READ = _FS["execute"] | _FS["read_file"] | _FS["read_dir"]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _PortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; 0 when there is none (or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _libc().syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _cgroup_pids_root() -> Path | None:
    """A pids cgroup hierarchy this process may create groups in (root only), or None."""
    if os.geteuid() != 0:
        return None
    for candidate in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if (candidate / "cgroup.procs").exists() and os.access(candidate, os.W_OK):
            controllers = candidate / "cgroup.controllers"
            if candidate.name == "pids" or (controllers.exists() and "pids" in controllers.read_text().split()):
                if candidate.name != "pids":  # cgroup v2: pids (and cpu) must be enabled for children
                    try:
                        (candidate / "cgroup.subtree_control").write_text("+pids")
                    except OSError:
                        continue
                    try:  # a fair share of the cores for each submission's group
                        (candidate / "cgroup.subtree_control").write_text("+cpu")
                    except OSError:
                        pass
                return candidate
    return None


def capabilities() -> dict[str, bool]:
    """What this machine enforces: files, network, signals (Landlock ABI), process count."""
    abi = landlock_abi()
    return {"files": abi >= 1, "network": abi >= 4, "signals": abi >= 6,
            "processes": os.geteuid() != 0 or _cgroup_pids_root() is not None,
            "answers out of reach": abi >= 1,  # the grader's coursekit unreadable (a locked copy imported)
            **privileges.available()}


def make_cgroup(name: str, processes: int) -> str:
    """Create a pids cgroup allowing ``processes`` tasks; '' where there is none to use."""
    root = _cgroup_pids_root()
    if root is None:
        return ""
    group = root / name
    try:
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(processes))
    except OSError:
        return ""
    return str(group)


def make_cpu_cgroup(name: str) -> str:
    """Create a cgroup (v1 ``cpu`` hierarchy, root only) in which a submission's processes share
    one scheduling entity: however many threads a submission runs, the submissions graded at
    once get equal shares of the cores (with cgroup v2 the pids group of :func:`make_cgroup`
    does this). '' where there is none."""
    root = Path("/sys/fs/cgroup/cpu")
    if os.geteuid() != 0 or not (root / "cpu.shares").exists() or not os.access(root, os.W_OK):
        return ""
    try:
        (root / name).mkdir(exist_ok=True)
    except OSError:
        return ""
    return str(root / name)


def remove_cgroup(group: str) -> None:
    """Kill every task left in ``group`` and remove it."""
    if not group:
        return
    path = Path(group)
    for _ in range(50):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    try:
        path.rmdir()
    except OSError:
        pass


# What of /etc a Python process reads (the loader, time zone, fonts, user names, TLS roots);
# not the rest (on a grading server /etc may hold secrets readable by the grader's user).
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "fonts", "passwd",
        "group", "nsswitch.conf", "hosts", "host.conf", "ssl", "ca-certificates", "mime.types",
        "os-release", "matplotlibrc", "alternatives")


def _read_paths(policy: Policy) -> list[str]:
    """What running Python, numpy, torch and the kernel need to read, plus the policy's."""
    import sysconfig

    import coursekit

    ours = str(Path(coursekit.__file__).resolve().parent)
    paths = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt", "/proc", "/sys",
             *(f"/etc/{name}" for name in _ETC),
             "/dev/urandom", "/dev/random", "/dev/zero", "/dev/null", "/dev/shm",
             sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             policy.package or ours]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.append(sysconfig.get_paths()[key])
    paths += [p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p]
    paths = [p for p in dict.fromkeys(paths + policy.read) if os.path.exists(p)]
    return _without(paths, ours) if policy.package else paths


def _without(paths: list[str], hidden: str) -> list[str]:
    """``paths`` with ``hidden`` cut out: a path that holds it (site-packages holding the
    grader's coursekit) is replaced by its entries, except the one on the way to ``hidden``."""
    hidden = os.path.realpath(hidden)
    out: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real == hidden or real.startswith(hidden + os.sep):
            continue
        if not hidden.startswith(real.rstrip(os.sep) + os.sep):
            out.append(path)
            continue
        try:
            entries = sorted(os.listdir(real))
        except OSError:
            continue
        out += _without([os.path.join(real, entry) for entry in entries], hidden)
    return out


def _add_path(ruleset: int, path: str, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY
        attr = _PathAttr(access, fd)
        if _libc().syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH, ctypes.byref(attr), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def apply_landlock(policy: Policy) -> int:
    """Restrict this process (and everything it starts) to the policy. Returns the ABI used."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    libc = _libc()
    handled_fs = _FS_BY_ABI.get(abi, _FS_BY_ABI[5])
    attr = _RulesetAttr(handled_fs, (_NET_BIND | _NET_CONNECT) if abi >= 4 else 0,
                        (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in _read_paths(policy):
            _add_path(ruleset, path, _READ)
        _add_path(ruleset, "/dev/null", _FS["write_file"] | _FS["read_file"] | _FS["truncate"])
        for folder in [policy.scratch, *policy.write]:
            _add_path(ruleset, folder, handled_fs)
        if abi >= 4:
            for port, access in [(p, _NET_BIND) for p in policy.ports] + [(p, _NET_CONNECT) for p in policy.connect]:
                rule = _PortAttr(access, port)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PORT, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule(port {port})")
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_SYS_RESTRICT, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def apply_limits(policy: Policy) -> None:
    limits = policy.limits
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    if policy.cpu_group:
        Path(policy.cpu_group, "cgroup.procs").write_text(str(os.getpid()))
    if policy.cgroup:
        Path(policy.cgroup, "cgroup.procs").write_text(str(os.getpid()))


def _limit_processes(policy: Policy, already: int) -> None:
    """RLIMIT_NPROC counts every process of this uid: allow the policy's many more than
    ``already`` (root ignores it, so a root grader's kernels rely on the pids cgroup)."""
    if os.geteuid() != 0:
        most = already + policy.limits.processes
        resource.setrlimit(resource.RLIMIT_NPROC, (most, most))


def _owned(proc: Path) -> bool:
    try:
        return proc.stat().st_uid == os.geteuid()
    except OSError:
        return False


def enter(policy: Policy) -> None:
    """Shut this process in: working directory, environment, limits, its own pid namespace
    and uid (:mod:`.privileges`; the processes outside wait and exit with the kernel's
    status), Landlock."""
    os.chdir(policy.scratch)
    os.environ.update(policy.env)
    if policy.package:  # the only coursekit the kernel finds (the grader's is not readable)
        os.environ["PYTHONPATH"] = policy.package
    apply_limits(policy)
    root = os.geteuid() == 0
    already = 0 if root else sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owned(p))
    _, inside = privileges.isolate(policy.uid or privileges.sandbox_uid(policy.scratch), policy.scratch,
                                   files_confined=landlock_abi() >= 1, grader=policy.grader)
    # RLIMIT_NPROC counts a uid's tasks (per user namespace since Linux 5.14): in namespaces of
    # its own, or as a uid of its own, only the sandbox's (its init, the waiter, itself) count
    _limit_processes(policy, 3 if inside or root else already)
    apply_landlock(policy)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m coursekit.grading.kernel.sandbox POLICY.json -- CMD [ARGS...]")
    policy = Policy.load(argv[0])
    enter(policy)
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main()
