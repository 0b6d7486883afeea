"""The judge's line to a student's kernel, without nbgrader: a real IPython kernel holds the
"student's" code, this process is the judge (coursekit.grading.judge.client), and what crosses is
checked: values by value, functions by handle, torch modules as a mirror whose forward and
backward run in the student's kernel (coursekit.grading.judge.mirror)."""
import numpy as np
import pytest
import torch
from jupyter_client import KernelManager
from torch import nn

from coursekit.grading.judge import client as judge_module
from coursekit.grading.judge.mirror import RemoteModule, Submodule
from coursekit.models.recipe import recipe

STUDENT = '''
import numpy as np, torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4 * 4 * 4, 5)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.features(x).flatten(1))

class Wrapper(nn.Module):          # a student's own submodule class, shared twice
    def __init__(self):
        super().__init__()
        self.inner = Net()
        self.again = self.inner

    def forward(self, x):
        return self.inner(x)

def draw(rng, n):
    return rng.standard_normal(n)

def freeze_all_but_head(model):
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("out")
    return model

def crash():
    return {}.missing

from collections import OrderedDict, namedtuple
Cache = namedtuple("Cache", "x w b")

def forward(x, w, b):              # a cache of the student's own type, read back by field
    return x @ w + b, Cache(x, w, b)

def backward(dout, cache):
    return dout @ cache.w.T, cache.x.T @ dout, dout.sum(axis=0), type(cache).__name__

def ordered():
    return OrderedDict(a=1)

placeholder = ...

_kept = []

def keep_and_call(f, x):           # keeps a function of the judge's past the call it came with
    _kept.append(f)
    return f(x)

def call_kept(x):
    return _kept[-1](x)

def fill(f, state):                # the judge's f changes state in place: the change comes back
    f(state)
    return state

# what a cheating submission does to its own kernel: nothing of it reaches the judge
torch.allclose = torch.equal = np.allclose = lambda *a, **k: True
'''


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    reply = kc.execute_interactive(STUDENT, timeout=120)
    assert reply["content"]["status"] == "ok", reply["content"]
    info = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in km.get_connection_info(session=False).items()}
    try:
        # a Judge, not judge.install(): that also points coursekit's reference-call counter at
        # this kernel, for the rest of the test session
        judge = judge_module.Judge(info, str(tmp_path_factory.mktemp("exchange")))
        judge.student_client = kc   # what runs the notebook's own cells
        yield judge
        judge.close()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def get(judge, name):
    return judge.request({"op": "get", "name": name})


def test_the_student_kernel_answers_a_burst_of_calls_then_runs_the_next_cell(judge):
    """The student's kernel answers a check's calls in one loop that ends once they stop
    coming (protocol.LOOP_IDLE): the notebook's next cell then runs at once, and a later call
    starts the loop again."""
    import time

    from coursekit.grading.judge import protocol

    draw = get(judge, "draw")
    start = time.perf_counter()
    values = [draw(np.random.default_rng(k), 3) for k in range(200)]
    per_call = (time.perf_counter() - start) / 200
    assert all(np.array_equal(v, np.random.default_rng(k).standard_normal(3)) for k, v in enumerate(values))
    start = time.monotonic()
    reply = judge.student_client.execute_interactive("after_the_checks = 1", timeout=10)
    assert reply["content"]["status"] == "ok" and time.monotonic() - start < 2
    time.sleep(3 * protocol.LOOP_IDLE)
    assert get(judge, "after_the_checks") == 1
    print(f"{per_call * 1e3:.2f} ms per call")


def test_a_student_module_is_mirrored_with_the_judges_own_classes(judge):
    model = get(judge, "Net")()
    assert isinstance(model, RemoteModule) and isinstance(model, nn.Module)
    kinds = [type(m) for m in model.modules()]
    assert kinds[1:] == [nn.Sequential, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear]
    assert [n for n, _ in model.named_parameters()] == ["features.0.weight", "features.0.bias", "features.1.weight",
                                                        "features.1.bias", "head.weight", "head.bias"]
    assert "features.1.running_mean" in model.state_dict() and model.calls == 0
    assert sum(p.numel() for p in model.parameters()) == 3 * 4 * 9 + 4 + 4 + 4 + 64 * 5 + 5
    assert model.features[1].eps == 1e-5  # plain attributes come along


def test_forward_runs_in_the_students_kernel_with_the_judges_weights(judge):
    model = get(judge, "Net")()
    local = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))
    model.load_state_dict(dict(zip(model.state_dict(), local.state_dict().values())))
    x = torch.randn(2, 3, 6, 6)
    for mode in (False, True):
        model.train(mode)
        local.train(mode)
        with torch.no_grad():
            assert torch.allclose(model(x), local(x), atol=1e-6)
    # train-mode batch norm updated the student's running statistics, and they came back
    assert torch.allclose(model.features[1].running_mean, local[1].running_mean)
    assert not torch.equal(model.features[1].running_mean, torch.zeros(4))


def test_an_optimiser_in_the_judge_trains_the_students_network(judge):
    torch.manual_seed(0)
    model = get(judge, "Net")()
    x, y = torch.randn(8, 3, 6, 6), torch.arange(8) % 5
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0], losses
    # forward ran in the student's kernel, once per step (the mirror keeps the value it was built with)
    assert model.calls == 0 and judge.request({"op": "getattr", "obj": model._node, "name": "calls"}) == 15


def test_shared_and_unknown_submodules(judge):
    model = get(judge, "Wrapper")()
    assert type(model.inner).__name__ == "Submodule" and isinstance(model.inner, Submodule)
    assert model.inner is model.again
    assert list(model.state_dict()) == list(nn.Module.state_dict(model))
    with pytest.raises(RuntimeError, match="run the whole model"):
        model.inner(torch.zeros(1, 3, 6, 6))
    assert model(torch.zeros(1, 3, 6, 6)).shape == (1, 5)


def test_the_checkers_model_is_rebuilt_in_the_students_kernel(judge):
    from coursekit.models import DeepMLP

    torch.manual_seed(1)
    ours = recipe(DeepMLP(3, 4, 1, 2, False), "coursekit.models.residual.DeepMLP", 3, 4, 1, 2, False)
    ours.eval()
    theirs = get(judge, "freeze_all_but_head")(ours)
    assert isinstance(theirs, RemoteModule) and theirs.remote_type == "DeepMLP"
    assert {n for n, p in theirs.named_parameters() if p.requires_grad} == {"out.weight", "out.bias"}
    assert all(p.requires_grad for p in ours.parameters())  # the student changed its copy, not ours
    assert all(torch.equal(a, b) for a, b in zip(theirs.state_dict().values(), ours.state_dict().values()))
    assert not theirs.training


def test_a_generator_is_sent_by_state_and_its_draws_come_back(judge):
    rng = np.random.default_rng(5)
    twin = np.random.default_rng(5)
    first = get(judge, "draw")(rng, 3)
    assert np.array_equal(first, twin.standard_normal(3))
    assert np.array_equal(rng.standard_normal(2), twin.standard_normal(2))  # ours advanced too


def test_the_students_exceptions_are_caught_as_the_builtin_they_are(judge):
    with pytest.raises(AttributeError) as info:
        get(judge, "crash")()
    assert isinstance(info.value, judge_module.RemoteError)
    assert getattr(get(judge, "Net"), "no_such_attribute", "default") == "default"


def test_the_students_patches_stay_in_the_students_kernel(judge):
    assert get(judge, "np").allclose(0, 1) is True  # patched there...
    assert not torch.allclose(torch.zeros(1), torch.ones(1)) and not np.allclose(0, 1)  # ...not here
    model = get(judge, "Net")()
    assert not torch.equal(model(torch.zeros(1, 3, 6, 6)).detach(), torch.full((1, 5), 123.0))


def test_values_come_back_as_they_went(judge):
    """A namedtuple cache reaches the student's backward as the namedtuple it was (its items are
    plain values in the judge), and an untouched `...` is Ellipsis, not a handle."""
    x, w, b = np.ones((2, 3)), np.arange(12.0).reshape(3, 4), np.zeros(4)
    out, cache = get(judge, "forward")(x, w, b)
    assert isinstance(cache, tuple) and len(cache) == 3 and np.array_equal(cache[1], w)
    assert np.array_equal(cache.w, w)  # the field, read in the student's kernel
    dx, dw, db, kind = get(judge, "backward")(np.ones((2, 4)), cache)
    assert kind == "Cache" and np.array_equal(dx, np.ones((2, 4)) @ w.T)
    assert get(judge, "ordered")() == {"a": 1}
    assert get(judge, "placeholder") is Ellipsis


def test_a_judge_function_answers_only_during_its_call_and_its_changes_come_back(judge):
    """The functions a check hands the student's code (the references an exercise builds on,
    the f of a numerical gradient) are called back in the judge, only while that call runs,
    and what they change in their arguments reaches the student's objects."""
    assert get(judge, "keep_and_call")(lambda x: 2 * x, 3) == 6
    with pytest.raises(RuntimeError, match="given to an earlier call, and answers only while that call runs"):
        get(judge, "call_kept")(4)

    def momentum(state):
        state["velocity"] = state.get("velocity", 0) + 1
        state["w"] *= 2
    out = get(judge, "fill")(momentum, {"w": np.ones(2)})
    assert out["velocity"] == 1 and np.array_equal(out["w"], [2.0, 2.0])


def test_a_judge_that_cannot_start_fails_the_submission_not_the_cell(tmp_path):
    """Starting the judge involves nothing of the student's; when it fails twice (here: a kernel
    that is not installed) the error is the grader's (JudgeStartError, which fails
    the submission so that a rerun grades it), never a graded cell's 0, and no kernel is left."""
    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync

    from coursekit.grading.judge.session import JudgeSession, JudgeStartError
    from coursekit.grading.kernel.sandbox import Limits

    student = AsyncKernelManager(kernel_name="python3")
    run_sync(student.start_kernel)()
    try:
        session = JudgeSession(student, config=None, kernel_name="no-such-kernel", extra_arguments=[],
                               startup_timeout=60, folder=tmp_path / "judge", exchange=tmp_path / "exchange",
                               read=[], limits=Limits(), env={})
        with pytest.raises(JudgeStartError, match="could not start, twice: NoSuchKernel"):
            session._start_or_fail()
        assert session.km is None and session._launched is None
    finally:
        run_sync(student.shutdown_kernel)(now=True)
