"""What the judge reads from a submission's source to say an answer uses coursekit's own
(coursekit.grading.judge.own_work): every way of naming the reference, and nothing else."""
import nbformat
import pytest

from coursekit.grading.judge.own_work import student_sources, used, uses


@pytest.mark.parametrize("source, how", [
    ("from coursekit.reference.conv import im2col", "from coursekit.reference.conv import im2col"),
    ("from coursekit.reference.conv import im2col as mine", "from coursekit.reference.conv import im2col"),
    ("from coursekit.reference.conv import *", "from coursekit.reference.conv import *"),
    ("from coursekit.reference import conv\ncols = conv.im2col(x, 2, 2)", "conv.im2col"),
    ("import coursekit.reference.conv as C\nf = C.im2col", "C.im2col"),
    ("import coursekit\nf = coursekit.reference.conv.im2col", "coursekit.reference.conv.im2col"),
    ("import coursekit.reference as R\nf = R._original('conv.im2col')", "'conv.im2col'"),
    ("from coursekit import reference\nf = reference.conv.im2col", "reference.conv.im2col"),
])
def test_each_way_of_naming_the_reference_is_found(source, how):
    assert uses(source, "conv.im2col") == how


@pytest.mark.parametrize("source", [
    "def im2col(x, kh, kw, stride=1, pad=0):\n    return x",                    # the student's own
    "from coursekit.reference.conv import col2im",                                # given, not the answer
    "import numpy as np\nnp.im2col = None\nf = np.im2col",                      # not coursekit's
    "f = getattr(__import__('course' + 'kit.reference.conv', fromlist=['_']), 'im2col')",  # not in the
    "def broken(:\n",                                                             # source: absent graded
])
def test_what_is_not_the_reference_is_not_found(source):
    assert uses(source, "conv.im2col") == ""


def test_networks_of_coursekit_models_are_found_from_any_of_its_modules():
    assert uses("from coursekit.models import BasicBlock", "models.BasicBlock") == "from coursekit.models import BasicBlock"
    assert uses("import coursekit.models.resnet as r\nB = r.BasicBlock", "models.BasicBlock") == "r.BasicBlock"
    assert uses("from coursekit.models.scene_nets import SimpleNetFinal", "models.SimpleNet") == ""
    assert used(["x = 1", "from coursekit.models import DeepMLP"], ["models.BasicBlock", "models.DeepMLP"]) == {
        "models.DeepMLP": "from coursekit.models import DeepMLP"}


def test_only_the_students_cells_are_read():
    locked = nbformat.v4.new_code_cell("from coursekit.reference.conv import col2im, im2col",
                                       metadata={"nbgrader": {"locked": True, "solution": False}})
    answer = nbformat.v4.new_code_cell("def im2col(x): ...", metadata={"nbgrader": {"solution": True, "locked": False}})
    added = nbformat.v4.new_code_cell("import coursekit")
    text = nbformat.v4.new_markdown_cell("from coursekit.reference.conv import im2col")
    assert student_sources([locked, answer, added, text]) == ["def im2col(x): ...", "import coursekit"]


def test_a_given_function_that_computes_an_exercise_is_forbidden_in_its_answer():
    """04 gives bn_mlp_training_loss (a forward pass of exercise 7 inside) to train with: the
    graded check of exercise 7 asks whether the answer's source uses it, as it asks of the
    exercise's reference."""
    from coursekit import reference
    from coursekit.checks import ReferenceUsedError
    from coursekit.checks import normalisation as check
    from coursekit.reference.networks import bn_mlp_loss

    asked = []
    source = "from coursekit.reference.networks import bn_mlp_training_loss\ndef bn_mlp_forward(p, s, X, mode): ..."
    reference.set_uses(lambda names: asked.extend(names) or used([source], names))
    try:
        with pytest.raises(ReferenceUsedError, match="coursekit.reference.networks.bn_mlp_training_loss "
                           r"\(from coursekit.reference.networks import bn_mlp_training_loss\)"):
            check.bn_mlp_forward(lambda p, s, X, mode: bn_mlp_loss(p, X, state=s, mode=mode, momentum=0.99), graded=True)
    finally:
        reference.set_uses(None)
    assert "networks.bn_mlp_training_loss" in asked and "networks.bn_mlp_loss" in asked
