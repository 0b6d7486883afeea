"""Per-student numbers for the hand calculations (issue 20, part 3): drawn from the student's
id; the self-checks use the student's numbers; a class run grades with the numbers of the
submission folder's student, so a notebook copied from a classmate loses those exercises (and
says whose id it carried), and the instructor's answers earn full marks under any id."""
import re

import nbformat
import pytest

from coursekit.checks import CheckError, personal
from coursekit.checks import architectures as check06
from coursekit.checks import backprop as check01
from coursekit.checks import conv as check03
from coursekit.grading.classes.sample import student_notebook
from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.intake import someone_else
from coursekit.models import summary
from coursekit.reference.backprop import gate_graph, scalar_graph
from coursekit.reference.conv import output_size

NOTEBOOKS = ("01_backprop", "03_conv", "06_architectures")
#: the exercises whose answers are the student's own numbers, and their points
HAND = {"01_backprop": {"ex1_tests": 2, "ex2b_tests": 2}, "03_conv": {"ex2_tests": 2},
        "06_architectures": {"ex1_tests": 3}}


@pytest.fixture
def no_ids(monkeypatch):
    for name in (personal.STUDENT_ENV, personal.HUB_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(personal, "_registered", "")


def test_two_ids_give_different_numbers_and_one_id_always_the_same():
    ann, ben = personal.numbers("ann"), personal.numbers("ben")
    for part in ("scalar_graph", "gate_graph", "conv_layer", "layer"):
        assert getattr(ann, part) != getattr(ben, part), part
    same = personal.numbers(" Ann ")                      # case and spaces do not make a new student
    assert repr([getattr(same, part) for part in ("scalar_graph", "gate_graph", "network", "conv_layer", "layer")]) == \
        repr([getattr(ann, part) for part in ("scalar_graph", "gate_graph", "network", "conv_layer", "layer")])
    assert personal.numbers("") is personal.LECTURE       # no id: the lecture's worked example
    assert personal.LECTURE.scalar_graph == dict(x=-2.0, y=5.0, z=-4.0)
    # among a class of 300, no two students share all their hand calculations
    everyone = {repr((n.scalar_graph, n.gate_graph, n.conv_layer, n.layer))
                for n in (personal.numbers(f"s{i:04d}") for i in range(300))}
    assert len(everyone) == 300


def test_every_id_gets_numbers_whose_answers_and_diagnoses_are_unambiguous():
    for i in range(300):
        mine = personal.numbers(f"student-{i}")
        x, y, z = mine.scalar_graph.values()
        q = x + y
        assert abs(q) > 1 and abs(z) > 1 and len({x, y, z, q}) == 4   # "used q, not z" is a real diagnosis
        g = mine.gate_graph
        assert g["z"] > g["w"] and abs(g["x"]) != abs(g["y"]) and 0 not in (g["x"], g["y"])
        c = mine.conv_layer
        assert output_size(c["size"], c["kernel"], c["stride"], c["pad"]) >= 1   # tiles: no ValueError
        layer = mine.layer
        assert output_size(layer["in_shape"][1], layer["kernel"], layer["stride"], layer["pad"]) >= 1


def test_which_id_counts(no_ids, monkeypatch):
    assert personal.student_id("") == ""
    monkeypatch.setenv(personal.HUB_ENV, "hubuser")
    assert personal.student_id("") == "hubuser" and personal.student_id(" ann ") == "ann"
    monkeypatch.setenv(personal.STUDENT_ENV, "ben")      # graded: the submission's folder, whatever was entered
    assert personal.student_id("ann") == "ben"


def test_the_self_check_uses_the_students_own_numbers(no_ids, capsys):
    personal.my_numbers("")
    assert "No STUDENT_ID: the hand calculations use the lecture's numbers" in capsys.readouterr().out
    check01.scalar_graph(**scalar_graph(-2.0, 5.0, -4.0))          # the worked example, without an id
    mine = personal.my_numbers("ann")
    assert "Your numbers come from your id 'ann'" in capsys.readouterr().out
    check01.scalar_graph(**scalar_graph(*mine.scalar_graph.values()))
    check01.gate_graph(**gate_graph(*mine.gate_graph.values()))
    bens = personal.numbers("ben")
    with pytest.raises(CheckError, match=r"^q "):                   # ben's answers are not ann's
        check01.scalar_graph(**scalar_graph(*bens.scalar_graph.values()))
    with pytest.raises(CheckError, match="df_dx"):
        check01.gate_graph(**gate_graph(*bens.gate_graph.values()))
    with pytest.raises(CheckError, match=r"^q "):                   # nor the lecture's
        check01.scalar_graph(**scalar_graph(-2.0, 5.0, -4.0))


def test_the_by_hand_checks_name_the_mistake(no_ids):
    personal.my_numbers("ann")
    c, n, f, k, s, p = personal.numbers("ann").conv_layer.values()
    out = (n - k + 2 * p) // s + 1
    check03.conv_by_hand(size=out, params=f * (c * k * k + 1), macs=f * out * out * c * k * k)
    with pytest.raises(CheckError, match="you forgot the biases"):
        check03.conv_by_hand(size=out, params=f * c * k * k, macs=f * out * out * c * k * k)
    with pytest.raises(CheckError, match="its output size"):
        check03.conv_by_hand(size=..., params=0, macs=0)
    layer = personal.numbers("ann").layer
    from torch import nn
    row = summary(nn.Conv2d(layer["in_shape"][0], layer["filters"], layer["kernel"], layer["stride"], layer["pad"]),
                  layer["in_shape"]).rows[1]
    check06.layer_by_hand(shape=row.out_shape, params=row.params, macs=row.macs)
    with pytest.raises(CheckError, match=r"its output shape should be a shape, a tuple like"):
        check06.layer_by_hand(shape=("fifty", 55, 55), params=row.params, macs=row.macs)
    with pytest.raises(CheckError, match=r"its parameters"):
        check03.conv_by_hand(size=out, params="760", macs=0)
    with pytest.raises(CheckError, match=r"channels first"):
        check06.layer_by_hand(shape=row.out_shape[1:] + row.out_shape[:1], params=row.params, macs=row.macs)


def test_a_notebook_naming_someone_else_is_noted():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('STUDENT_ID = "ann"  # me')])
    assert someone_else(nb, "ann") == [] and someone_else(nb, " ANN") == []
    assert someone_else(nb, "ben") == ["the notebook's STUDENT_ID is 'ann': graded as 'ben' (the submission's "
                                       "folder), so its hand calculations were checked on ben's numbers"]
    nb.cells[0].source = 'STUDENT_ID = ""'
    assert someone_else(nb, "ben") == []


# --- a class run -------------------------------------------------------------------------------------

def _typed(student: str) -> dict[str, dict]:
    """Answer-cell edits of someone who typed the hand calculations in as numbers, worked out
    for ``student``'s numbers (what a copy carries to another student)."""
    mine = personal.numbers(student)
    answers = scalar_graph(*mine.scalar_graph.values())
    gates = gate_graph(*mine.gate_graph.values())
    c, n, f, k, s, p = mine.conv_layer.values()
    out = (n - k + 2 * p) // s + 1
    layer = mine.layer
    (c6, side, _), f6, k6, s6, p6 = layer.values()
    out6 = (side - k6 + 2 * p6) // s6 + 1

    return {
        "01_backprop": {"ex1_answer": lambda src: re.sub(r"(?s)\nq = f = .*", "\n", src) + "\n".join(
                            f"{k} = {v!r}" for k, v in answers.items()) + "\n",
                        "ex2b_answer": lambda src: re.sub(r"(?s)\ndf_dc = df_da = .*", "\n", src) + "\n".join(
                            f"{k} = {v!r}" for k, v in gates.items()) + "\n"},
        "03_conv": {"ex2_by_hand": lambda src: re.sub(r"(?s)\nby_hand_size = .*", "\n", src)
                    + f"by_hand_size = {out}\nby_hand_params = {f * (c * k * k + 1)}\n"
                      f"by_hand_macs = {f * out * out * c * k * k}\n"},
        "06_architectures": {"ex1_by_hand": lambda src: re.sub(r"(?s)\nby_hand_shape = .*", "\n", src)
                             + f"by_hand_shape = ({f6}, {out6}, {out6})\nby_hand_params = {f6 * (c6 * k6 * k6 + 1)}\n"
                               f"by_hand_macs = {f6 * out6 * out6 * c6 * k6 * k6}\n"},
    }


def _with_id(nb, student_id: str):
    cell = next(c for c in nb.cells if c.cell_type == "code" and personal.ENTERED.search(c.source))
    cell.source = personal.ENTERED.sub(f'STUDENT_ID = "{student_id}"', cell.source)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, root, released):
    """ann typed her hand calculations in as numbers; ben handed in ann's notebooks; the
    instructor's answers (which compute the numbers from the ones given) under two other ids."""
    subs = tmp_path_factory.mktemp("personal-subs")
    typed = _typed("ann")
    for name in NOTEBOOKS:
        release, solution = released / f"{name}.ipynb", root / "solutions" / f"{name}.ipynb"
        anns = _with_id(student_notebook(release, solution, typed[name]), "ann")
        for student, nb in (("ann", anns), ("ben", anns), ("inst-7", student_notebook(release, solution)),
                            ("Zed.Q", _with_id(student_notebook(release, solution), "someone"))):
            (subs / student).mkdir(exist_ok=True)
            nbformat.write(nb, subs / student / f"{name}.ipynb")
    return autograde(root, subs, tmp_path_factory.mktemp("personal-out"), timeout=60, progress=False)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_own_numbers_typed_in_earn_full_marks_and_a_copy_loses_them(graded, name):
    ann, ben = graded.get("ann", name), graded.get("ben", name)
    assert not ann.failed and ann.score == ann.max_score - ann.awaiting, ann.problems
    lost = {e.grade_id: e.max_score for e in ben.exercises if e.score < e.max_score and not e.grade_id.startswith("written_")}
    assert lost == HAND[name], (ben.problems, lost)
    assert ben.score == ann.score - sum(HAND[name].values())
    assert any("the notebook's STUDENT_ID is 'ann': graded as 'ben'" in p for p in ben.problems), ben.problems
    assert not any("STUDENT_ID" in p for p in ann.problems)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_instructors_answers_earn_full_marks_under_any_id(graded, name):
    for student in ("inst-7", "Zed.Q"):
        r = graded.get(student, name)
        assert not r.failed and r.score == r.max_score - r.awaiting and r.awaiting > 0, (student, r.problems)
    assert any("graded as 'Zed.Q'" in p for p in graded.get("Zed.Q", name).problems)
