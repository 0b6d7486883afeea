"""Calling the reference for the exercise being graded is detected, however it is called."""
import numpy as np
import pytest

from coursekit import reference
from coursekit.checks import ReferenceUsedError, assert_own_work, backprop as check
from coursekit.reference import backprop as R


@pytest.fixture(autouse=True)
def clean_record():
    reference.reset_recorded_calls()
    yield
    reference.reset_recorded_calls()


def notebook_namespace():
    """A namespace like a notebook's: code run in it is the student's (__name__ == '__main__')."""
    return {"__name__": "__main__", "np": np}


def test_top_level_call_from_a_notebook_is_recorded():
    ns = notebook_namespace()
    exec("from coursekit.reference.backprop import scalar_graph\nd = scalar_graph(-2, 5, -4)", ns)
    with pytest.raises(ReferenceUsedError, match="scalar_graph"):
        assert_own_work("backprop.scalar_graph")
    assert_own_work("backprop.softmax_nll")  # other exercises are unaffected


def test_student_function_wrapping_the_reference_is_caught():
    ns = notebook_namespace()
    exec("import coursekit.reference.backprop as ref\n"
         "def softmax_nll(s, y):\n    return ref.softmax_nll(s, y)\n", ns)
    check.softmax_nll(ns["softmax_nll"], quiet=True)  # right values...
    with pytest.raises(ReferenceUsedError):           # ...but not the student's own work
        assert_own_work("backprop.softmax_nll")


def test_reference_passed_off_as_own_function_is_caught():
    check.numerical_gradient(R.numerical_gradient, quiet=True)
    with pytest.raises(ReferenceUsedError):
        assert_own_work("backprop.numerical_gradient")


def test_checkers_own_use_of_the_reference_is_not_recorded():
    ns = notebook_namespace()
    exec("def rel_error(a, b):\n"
         "    a, b = np.asarray(a, float), np.asarray(b, float)\n"
         "    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))\n", ns)
    check.rel_error(ns["rel_error"], quiet=True)
    assert_own_work("backprop.rel_error")
    assert reference.recorded_calls("backprop.rel_error") == 0


def test_wrapper_hides_the_unwrapped_function():
    assert not hasattr(R.softmax_nll, "__wrapped__")
    assert R.softmax_nll.__name__ == "softmax_nll" and "(N, C)" in R.softmax_nll.__doc__


def test_a_locked_answer_shows_its_message_not_a_traceback():
    """In a students' coursekit (and in the student's kernel while it is graded) a locked
    answer reaches the notebook as one line that says which notebook unlocks it."""
    exc = pytest.raises(reference.LockedAnswer, reference.locked_answer, "conv.im2col", "03_conv").value
    lines = exc._render_traceback_()
    assert len(lines) == 1 and "LockedAnswer" in lines[0] and "notebook 03_conv" in lines[0], lines
