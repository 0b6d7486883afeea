"""The sandbox launcher on its own (python -m coursekit.grading.kernel.sandbox POLICY -- CMD): what a
shut-in process can and cannot do. The whole-class behaviour is in test_hostile.py."""
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
