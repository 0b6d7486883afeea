"""The sandbox launcher on its own (python -m coursekit.grading.kernel.sandbox POLICY -- CMD): what a
shut-in process can and cannot do. The whole-class behaviour is in test_hostile.py."""
import contextlib
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from coursekit.grading.kernel.sandbox import Policy, capabilities, make_cgroup, make_cpu_cgroup, remove_cgroup


def shut_in(tmp_path, code: str, **policy) -> subprocess.CompletedProcess:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    path = tmp_path / "policy.json"
    Policy(scratch=str(scratch), **policy).dump(path)
    return subprocess.run([sys.executable, "-m", "coursekit.grading.kernel.sandbox", str(path), "--",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=scratch)


def test_writes_outside_scratch_are_refused(tmp_path):
    if not capabilities()["files"]:
        pytest.skip("this kernel has no Landlock: files are not isolated here")
    outside = tmp_path / "outside.txt"
    done = shut_in(tmp_path, f"open({str(outside)!r}, 'w').write('x')")
    assert done.returncode != 0 and "PermissionError" in done.stderr
    assert not outside.exists()
    done = shut_in(tmp_path, "open('inside.txt', 'w').write('x')")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "scratch" / "inside.txt").read_text() == "x"


def test_the_process_joins_its_pids_and_cpu_groups(tmp_path):
    name = f"coursekit-test-{uuid.uuid4().hex[:8]}"
    pids, cpu = make_cgroup(name, 64), make_cpu_cgroup(name)
    if not pids and not cpu:
        pytest.skip("not root, or no cgroup hierarchy to create groups in: rlimits only")
    try:
        done = shut_in(tmp_path, "print(open('/proc/self/cgroup').read())", cgroup=pids, cpu_group=cpu)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        if pids:
            assert any(line.endswith("/" + name) and ("pids" in line or line.startswith("0::"))
                       for line in lines), lines
        if cpu:
            assert any(":cpu" in line and line.endswith("/" + name) for line in lines), lines
            assert Path(cpu, "cgroup.procs").read_text().strip() == ""  # it has exited
    finally:
        remove_cgroup(pids)
        remove_cgroup(cpu)
    assert not (pids and Path(pids).exists()) and not (cpu and Path(cpu).exists())


def test_rlimits_apply(tmp_path):
    done = shut_in(tmp_path, "import resource; print(resource.getrlimit(resource.RLIMIT_CPU)[0])")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == Policy(scratch="x").limits.cpu_seconds


PROBE = """
import ctypes, os, threading, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def refused(call):
    try:
        call()
    except OSError:
        return True
    return False
others = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]
readable = [p for p in others if not refused(lambda: open(f'/proc/{p}/environ').read())]
t = threading.Thread(target=lambda: None); t.start(); t.join()
print({"uid": os.getuid(), "euid": os.geteuid(), "groups": os.getgroups(),
       "renice": refused(lambda: os.nice(-5)),
       "unshare": [libc.unshare(flag) for flag in (0x10000000, 0x20000, 0x20000000, 0x40000000)],
       "others": others, "environ": readable,
       "child": subprocess.run(['true']).returncode, "thread": True})
"""


def test_the_kernel_runs_unprivileged_alone_in_its_pid_namespace(tmp_path):
    """Least privilege: not root even under a root grader, no renice, no new namespaces, and
    no other process to see (let alone read the environment of): the grader's, for one."""
    import ast
    import os

    from coursekit.grading.kernel import privileges
    have = privileges.available()
    done = shut_in(tmp_path, PROBE)
    assert done.returncode == 0, done.stderr
    seen = ast.literal_eval(done.stdout.strip())
    assert seen["child"] == 0 and seen["thread"]  # forking and threads still work
    assert seen["renice"]                          # cannot raise its priority
    if have["no new namespaces"]:
        assert seen["unshare"] == [-1, -1, -1, -1], seen
    else:
        print("not enforced on this machine: no seccomp filter for", os.uname().machine)
    if have["own pid namespace"]:
        assert seen["others"] == [1] and seen["environ"] == [], seen  # only its init, unreadable
    if os.geteuid() == 0:
        assert seen["uid"] == seen["euid"] == privileges.sandbox_uid(str(tmp_path / "scratch"))
        assert seen["uid"] != 0 and seen["groups"] == []
        assert (tmp_path / "scratch").stat().st_uid == seen["uid"]  # its folder is its own
    else:
        assert seen["uid"] == os.getuid()


def test_the_exit_status_and_a_kill_come_back_through_the_namespace(tmp_path):
    assert shut_in(tmp_path, "import sys; sys.exit(3)").returncode == 3
    killed = shut_in(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.returncode in (137, -9), killed.returncode


def test_the_seccomp_program_refuses_what_it_lists():
    """The filter's jumps land where they should (an off-by-one would allow, or refuse, all)."""
    from coursekit.grading.kernel import privileges
    arch = privileges._SYSCALLS["x86_64"]
    program = privileges._filter(arch)

    def run(nr, audit=arch["audit"], arg0=0):
        data = {0: nr, 4: audit, 16: arg0}
        pc = acc = 0
        while True:
            code, jt, jf, k = program[pc]
            if code == privileges._LD_ABS:
                acc, pc = data[k], pc + 1
            elif code == privileges._RET:
                return k
            else:
                hit = {privileges._JEQ: acc == k, privileges._JGE: acc >= k,
                       privileges._JSET: bool(acc & k)}[code]
                pc += 1 + (jt if hit else jf)

    deny = privileges._ERRNO | privileges._EPERM
    assert all(run(nr) == deny for nr in arch["refused"].values())
    assert run(0) == run(1) == run(59) == privileges._ALLOW          # read, write, execve
    assert run(arch["clone"], arg0=0x011) == privileges._ALLOW        # fork
    assert run(arch["clone"], arg0=0x3d0f00) == privileges._ALLOW     # a thread
    assert run(arch["clone"], arg0=0x10000000) == deny                # CLONE_NEWUSER
    assert run(arch["clone3"]) == privileges._ERRNO | privileges._ENOSYS
    assert run(0, audit=0x40000003) == deny                           # i386 calls
    assert run(0x40000000 + 272) == deny                              # x32 calls


def test_a_policy_uid_is_the_kernels_and_the_judge_gets_another(tmp_path):
    import os

    from coursekit.grading.kernel import privileges
    if os.geteuid() != 0:
        pytest.skip("not root: the kernel keeps the grader's uid")
    judge = privileges.sandbox_uid(str(tmp_path), "judge")
    assert judge != privileges.sandbox_uid(str(tmp_path), "student")
    done = shut_in(tmp_path, "import os; print(os.getuid())", uid=judge)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == judge and (tmp_path / "scratch").stat().st_uid == judge


@contextlib.contextmanager
def raced_kernel(tmp_path, every_start: bool):
    """A sandboxed kernel, launched, whose shell port another socket takes after jupyter_client
    chose it and before the kernel binds it: at its first start, or at every start. Yields the
    manager and the sockets holding the ports."""
    from jupyter_core.utils import run_sync

    from coursekit.grading.kernel.manager import SandboxedKernelManager

    held = []

    class Raced(SandboxedKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):   # the ports are chosen by now
            if every_start or not held:
                held.append(socket.socket())
                held[-1].bind(("127.0.0.1", self.shell_port))
                held[-1].listen()
            return super().format_kernel_cmd(extra_arguments)

    (tmp_path / "scratch").mkdir()
    km = Raced(kernel_name="python3")
    km.shut_in(tmp_path / "runtime", Policy(scratch=str(tmp_path / "scratch")))
    try:
        run_sync(km.start_kernel)(cwd=str(tmp_path / "scratch"))
        yield km, held
    finally:
        for sock in held:
            sock.close()
        run_sync(km.shutdown_kernel)(now=True)


def test_a_kernel_whose_port_was_taken_as_it_booted_is_started_again(tmp_path):
    """jupyter_client picks a kernel's ports by binding and releasing them; another process may
    take one before the kernel binds it (kernels booting side by side), and the kernel then dies
    before answering. The grader starts it again on new ports instead of failing the submission."""
    from jupyter_core.utils import run_sync

    from coursekit.grading.kernel.manager import ready_client

    with raced_kernel(tmp_path, every_start=False) as (km, _):
        first = km.shell_port
        kc = run_sync(ready_client)(km, 60)
        try:
            assert km.shell_port != first, "the kernel was not started again on new ports"
            reply = run_sync(kc.execute_interactive)("print(6 * 7)", timeout=30,
                                                     output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()


def test_a_kernel_that_never_boots_fails_with_its_own_error(tmp_path):
    """Every start dies (here: its shell port is always taken): the error names the cause."""
    from jupyter_core.utils import run_sync

    from coursekit.grading.kernel.manager import STARTS, KernelStartError, ready_client

    with raced_kernel(tmp_path, every_start=True) as (km, held):
        with pytest.raises(KernelStartError, match=f"died as it started, {STARTS} times: .*Address already in use"):
            run_sync(ready_client)(km, 60)
        assert len(held) == STARTS


def test_a_sandbox_whose_grader_died_as_it_started_ends_with_it(tmp_path):
    """The grader's worker killed while a kernel's sandbox is still starting (before the
    sandbox could see who its parent was): the sandbox ends what it runs anyway, instead of
    keeping an orphaned kernel alive (seen after a worker was killed mid-submission)."""
    import os
    import time

    from coursekit.grading.kernel import privileges

    if not privileges._namespaces_work():
        pytest.skip("no pid namespaces here: a sandbox's kernel is the grader's own child, ended by ipykernel")
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"   # a sleep no other process runs
    (tmp_path / "scratch").mkdir()
    grader = f"""
import os, subprocess, sys
from pathlib import Path
from coursekit.grading.kernel.sandbox import Policy
Policy(scratch={str(tmp_path / 'scratch')!r}, grader=os.getpid()).dump(Path({str(tmp_path / 'policy.json')!r}))
subprocess.Popen([sys.executable, "-m", "coursekit.grading.kernel.sandbox", {str(tmp_path / 'policy.json')!r},
                  "--", "sleep", "{marker}"], start_new_session=True)
os._exit(0)   # gone before the sandbox has started
"""
    subprocess.run([sys.executable, "-c", grader], check=True, timeout=60)

    def sleeping():
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if cmdline.read_bytes() == b"sleep\0" + marker.encode() + b"\0":
                    found.append(int(cmdline.parent.name))
            except OSError:
                pass
        return found

    time.sleep(5)   # the sandbox starts (a second or two) and, its grader gone, ends
    left = sleeping()
    for pid in left:
        os.kill(pid, 9)
    assert not left, "the sandbox outlived the grader that launched it"
