"""Kernels forked from the zygote (coursekit.grading.kernel.zygote): shut in exactly as a kernel
started as a new interpreter, fresh for every submission, ended with their grader. The whole
class behaviour (hostile submissions graded through the zygote) is in test_hostile.py."""
import ast
import contextlib
import os
import subprocess
import sys
import time
import uuid

import pytest
from jupyter_core.utils import run_sync

from coursekit.grading.kernel import privileges, zygote
from coursekit.grading.kernel.manager import SandboxedKernelManager, ready_client
from coursekit.grading.kernel.sandbox import Policy, capabilities

pytestmark = pytest.mark.skipif(not zygote.usable(), reason="kernels are forked only under a root grader "
                                "whose kernels get uids of their own (this one is not root, or cannot change uid)")

ENV = {"MPLBACKEND": "agg", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def address():
    found = zygote.ensure(ENV)
    assert zygote.wait_warm(found), "the zygote did not import its libraries in 120 s"
    yield found
    zygote._stop_all()


@contextlib.contextmanager
def kernel(tmp_path, address, name="k", env=None, role="student", **policy):
    """A started, ready kernel (and its manager) launched with the zygote's address in the
    grader's environment, as a grading worker launches one."""
    scratch = tmp_path / name / "scratch"
    scratch.mkdir(parents=True)
    km = SandboxedKernelManager(kernel_name="python3")
    km.role = role
    km.shut_in(tmp_path / name / "runtime", Policy(scratch=str(scratch), env={**ENV, **(env or {})},
                                                   **policy))
    launch_env = {**os.environ, zygote.ROLES[role]: address, "HOME": str(scratch), "TMPDIR": str(scratch),
                  "GRADER_SECRET": "s3cret"}
    run_sync(km.start_kernel)(env=launch_env, cwd=str(scratch))
    kc = run_sync(ready_client)(km, 60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)


def run(kc, code: str, timeout: float = 60):
    """Run ``code``; its printed output and the reply's status."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(msg["content"]["ename"])
    reply = run_sync(kc.execute_interactive)(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]["status"]


LOOK = """
import ctypes, os, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
def refused(call):
    try:
        call()
    except OSError:
        return True
    return False
print(repr({"uid": os.getuid(), "groups": os.getgroups(), "cwd": os.getcwd(), "path0": sys.path[0],
            "tmp": tempfile.gettempdir(), "others": [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()],
            "unshare": libc.unshare(0x20000000), "write_outside": not refused(lambda: open(OUTSIDE, 'w')),
            "torch": "torch" in sys.modules, "coursekit": [m for m in sys.modules if m.startswith("coursekit")],
            "coursekit_from": __import__("coursekit").__file__,
            "read_graders": not refused(lambda: open(os.path.join(GRADERS, "reference", "layers.py")).read()),
            "env": sorted(os.environ), "proc_environ": open('/proc/self/environ', 'rb').read().decode(errors='replace'),
            "mpl": os.environ.get("MPLBACKEND"), "omp": os.environ.get("OMP_NUM_THREADS")}))
"""


def test_a_forked_kernel_is_shut_in_like_a_new_one(tmp_path, address):
    """Its uid, its pid namespace, no new namespaces, Landlock, its folder, its temporary folder,
    its environment (never the grader's), and the coursekit its policy gives it (a copy), not
    the grader's modules the zygote needed to shut it in, nor the grader's files."""
    import shutil

    import coursekit

    outside = tmp_path / "outside.txt"
    grader_copy = os.path.dirname(coursekit.__file__)
    package = tmp_path / "package"
    shutil.copytree(grader_copy, package / "coursekit", ignore=shutil.ignore_patterns("__pycache__"))
    with kernel(tmp_path, address, package=str(package)) as (km, kc):
        assert type(km.provisioner.process).__name__ == "ForkedKernel"
        text, status = run(kc, f"OUTSIDE = {str(outside)!r}\nGRADERS = {grader_copy!r}\n" + LOOK)
    assert status == "ok", text
    seen = ast.literal_eval(text.strip())
    scratch = str(tmp_path / "k" / "scratch")
    assert seen["uid"] == privileges.sandbox_uid(scratch) and seen["groups"] == []
    assert seen["cwd"] == seen["path0"] == seen["tmp"] == scratch
    assert seen["torch"]                                  # what the zygote imported is there
    assert seen["coursekit_from"] == str(package / "coursekit" / "__init__.py")
    assert not {"coursekit.grading.kernel.zygote", "coursekit.grading.kernel.sandbox"} & set(seen["coursekit"])
    assert "GRADER_SECRET" not in seen["proc_environ"] and "GRADER_SECRET" in seen["env"]
    assert zygote.ADDRESS not in seen["env"] and zygote.ADDRESS not in seen["proc_environ"]
    assert seen["mpl"] == "agg" and seen["omp"] == "1"
    if privileges.available()["own pid namespace"]:
        assert seen["others"] == [1], seen["others"]
    if privileges.available()["no new namespaces"]:
        assert seen["unshare"] == -1
    if capabilities()["files"]:
        assert not seen["write_outside"] and not outside.exists()
        assert not seen["read_graders"]                   # its references are out of reach


def test_nothing_one_kernel_does_reaches_the_next(tmp_path, address):
    """Each kernel is a copy of the untouched zygote: a module changed, a global generator
    drawn, a file left in the zygote's own folder by one kernel are not seen by the next; and
    two kernels draw different numbers from numpy's global generator (reseeded, as a fresh one)."""
    mark = "import numpy, torch, sys\n"
    with kernel(tmp_path, address, "first") as (_, kc):
        first, status = run(kc, mark + "torch.MARK = 1; numpy.MARK = 1; sys.MARK = 1\nprint(numpy.random.rand())")
        assert status == "ok", first
    with kernel(tmp_path, address, "second") as (_, kc):
        second, status = run(kc, mark + "print([hasattr(m, 'MARK') for m in (torch, numpy, sys)])\n"
                                        "print(numpy.random.rand())")
        assert status == "ok", second
    marks, draw = second.split("\n")[:2]
    assert marks == "[False, False, False]"
    assert draw != first.strip()


def test_the_memory_limit_counts_from_what_the_zygote_had_loaded(tmp_path, address):
    """The data-segment limit is the policy's on top of the preloaded libraries: the notebook
    may still allocate (almost) all of it, and not much more."""
    from coursekit.grading.kernel.sandbox import Limits

    with kernel(tmp_path, address, limits=Limits(memory_mb=512)) as (_, kc):
        ok, status = run(kc, "import numpy; a = numpy.ones(400 * 2**20 // 8); print(a.sum() > 0)")
        assert status == "ok" and ok.strip() == "True", ok
        refused, _ = run(kc, "b = numpy.ones(900 * 2**20 // 8)")
        assert "MemoryError" in refused, refused


def test_interrupt_exit_status_and_kill_reach_a_forked_kernel(tmp_path, address):
    with kernel(tmp_path, address) as (km, kc):
        pid = km.provisioner.process.pid
        assert os.getpgid(pid) == pid           # it leads its own session: Jupyter signals the group
        # (not stop_on_error: ipykernel would abort the requests that follow an error for a moment)
        kc.execute("import time; time.sleep(60)", stop_on_error=False)
        time.sleep(1)
        run_sync(km.interrupt_kernel)()
        reply = run_sync(kc.get_shell_msg)(timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        kc.execute("import os; os._exit(7)")
        assert km.provisioner.process.wait(timeout=20) == 7
    with kernel(tmp_path, address, "killed") as (km, kc):
        process = km.provisioner.process
        run_sync(km.shutdown_kernel)(now=True)
        assert process.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)


def test_a_kernel_whose_environment_differs_is_started_as_a_new_interpreter(tmp_path, address):
    """Libraries read some variables as they load (threads, matplotlib's backend): a kernel that
    needs other values than the zygote's is not forked from it."""
    with kernel(tmp_path, address, env={"OMP_NUM_THREADS": "2"}) as (km, kc):
        assert type(km.provisioner.process).__name__ == "Popen"
        text, status = run(kc, "import os, sys; print(os.environ['OMP_NUM_THREADS'], 'torch' in sys.modules)")
        assert status == "ok" and text.split() == ["2", "False"], text


def test_kernels_and_the_zygote_end_with_their_grader(tmp_path):
    """A grader killed while its kernel runs: the zygote kills that kernel (the grader's
    connection closed) and then ends itself (it dies with its parent)."""
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    (tmp_path / "scratch").mkdir()
    grader = f"""
import os, sys, time
from jupyter_core.utils import run_sync
from coursekit.grading.kernel import zygote
from coursekit.grading.kernel.manager import SandboxedKernelManager, ready_client
from coursekit.grading.kernel.sandbox import Policy
env = {ENV!r}
os.environ[zygote.ADDRESS] = zygote.ensure(env)
km = SandboxedKernelManager(kernel_name="python3")
km.shut_in(__import__("pathlib").Path({str(tmp_path / 'runtime')!r}), Policy(scratch={str(tmp_path / 'scratch')!r}, env=env))
run_sync(km.start_kernel)()
kc = run_sync(ready_client)(km, 60)
kc.execute("import subprocess; subprocess.Popen(['sleep', '{marker}'])")
time.sleep(2)
print(list(zygote._started.values())[0].process.pid, flush=True)
os._exit(0)
"""
    done = subprocess.run([sys.executable, "-c", grader], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    zygote_pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.split()
        try:
            os.kill(zygote_pid, 0)
            zygote_alive = True
        except ProcessLookupError:
            zygote_alive = False
        if not left and not zygote_alive:
            break
        time.sleep(0.2)
    assert not left, "the kernel's process outlived the grader that launched it"
    assert not zygote_alive, "the zygote outlived the grader that started it"


def test_a_zygote_started_from_a_thread_outlives_the_thread(tmp_path):
    """A Dask worker grades in task threads, which come and go: the zygote a task started ends
    with the worker process, not with that thread (a parent-death signal would fire with it)."""
    import threading

    env = {**ENV, "OMP_NUM_THREADS": "3"}   # a zygote of its own
    found = []
    thread = threading.Thread(target=lambda: found.append(zygote.ensure(env)))
    thread.start()
    thread.join()
    started = zygote.started(zygote.ensure(env))
    try:
        time.sleep(1.5)
        assert started.alive(), "the zygote ended with the thread that started it"
        assert zygote.ensure(env) == found[0]     # the same one, still in use
    finally:
        started.stop()


def test_without_its_zygote_a_kernel_starts_as_a_new_interpreter_at_once(tmp_path):
    """A zygote that died (killed, out of memory) costs nothing but its speed: the next kernel
    is started the old way, without waiting for it."""
    env = {**ENV, "OMP_NUM_THREADS": "4"}
    address = zygote.ensure(env)
    started = zygote.started(address)
    assert os.path.exists(address.partition("#")[0])   # it listens before its address is given
    started.process.kill()
    started.process.wait()
    begun = time.monotonic()
    with kernel(tmp_path, address, env={"OMP_NUM_THREADS": "4"}) as (km, kc):
        assert type(km.provisioner.process).__name__ == "Popen"
        text, status = run(kc, "print(6 * 7)")
    assert status == "ok" and text.strip() == "42"
    assert time.monotonic() - begun < 8
    started.stop()


def test_a_zygote_that_cannot_start_is_not_waited_for(tmp_path, monkeypatch):
    """A zygote that dies as it starts (here: it cannot import itself) gives no address, once:
    kernels start the old way without a wait, and it is not started again for every job."""
    env = {**ENV, "OMP_NUM_THREADS": "5"}
    monkeypatch.setattr(zygote, "__name__", "no.such.module")   # the module Zygote runs
    begun = time.monotonic()
    assert zygote.ensure(env) == ""
    assert time.monotonic() - begun < 10
    monkeypatch.undo()
    assert zygote.ensure(env) == ""              # not tried again in this process
    zygote._failed.clear()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def test_judges_have_a_zygote_of_their_own(tmp_path):
    """A judge's kernel is forked from another zygote than the students' kernels: no student
    shares a memory layout, a stack canary or a hash seed with the kernel that handles its values."""
    pointers = zygote.for_grading(ENV)
    assert set(pointers) == {zygote.ADDRESS, zygote.JUDGE_ADDRESS}
    student_zygote, judge_zygote = (zygote.started(pointers[v]) for v in (zygote.ADDRESS, zygote.JUDGE_ADDRESS))
    assert student_zygote is not judge_zygote
    graded = {**ENV, **zygote.GRADED}
    with kernel(tmp_path, pointers[zygote.ADDRESS], "student", env=graded) as (km, kc):
        assert _parent(km.provisioner.process.pid) == student_zygote.process.pid
    with kernel(tmp_path, pointers[zygote.JUDGE_ADDRESS], "judge", env=graded, role="judge") as (km, kc):
        assert type(km.provisioner.process).__name__ == "ForkedKernel"
        assert _parent(km.provisioner.process.pid) == judge_zygote.process.pid


def test_an_ended_kernels_pid_is_not_reused_until_its_grader_is_done(tmp_path, address):
    """jupyter_client signals a kernel's process group without asking whether it still runs:
    the zygote keeps an ended kernel's pid (its group) taken until the grader has waited for it."""
    with kernel(tmp_path, address) as (km, kc):
        process = km.provisioner.process
        kc.execute("import os; os._exit(3)")
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.returncode == 3
        with open(f"/proc/{process.pid}/stat") as fh:
            assert fh.read().rsplit(")", 1)[1].split()[0] == "Z"   # still held, as a zombie
        assert process.wait(timeout=5) == 3
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{process.pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{process.pid}")   # released once waited for
