"""`coursekit similarity`: two students who share a renamed copy of their answers rank first, far
above independent right answers written differently; code from the release and the instructor's
answers is not counted; the report renders in a browser, says it is not a verdict, and bad input
is refused with a reason."""
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.classes.sample import student_notebook

NOTEBOOK = "03_conv"

# ann's own answers (conv forward, max-pool forward, 1x1 conv)
ANN = {
    "ex4_answer": '''
def conv_forward_naive(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout = 1 + (H + 2 * pad - HH) // stride
    Wout = 1 + (W + 2 * pad - WW) // stride
    padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="constant")
    result = np.empty((N, F, Hout, Wout))
    for r in range(Hout):
        top = r * stride
        for c in range(Wout):
            left = c * stride
            region = padded[:, None, :, top:top + HH, left:left + WW]   # every image against every filter
            result[:, :, r, c] = (region * w[None]).sum(axis=(2, 3, 4)) + b
    return result, (x, w, b, stride, pad)
''',
    "ex6_answer": '''
def max_pool_forward(x, size=2, stride=2):
    N, C, H, W = x.shape
    Hout, Wout = (H - size) // stride + 1, (W - size) // stride + 1
    result = np.full((N, C, Hout, Wout), -np.inf)
    for dy in range(size):
        for dx in range(size):
            result = np.maximum(result, x[:, :, dy:dy + stride * Hout:stride, dx:dx + stride * Wout:stride])
    return result, (x, size, stride)
''',
    "ex9_answer": '''
def conv1x1_as_matmul(x, w, b):
    N, C, H, W = x.shape
    flat = np.moveaxis(x, 1, -1).reshape(-1, C)
    result = flat.dot(w.T) + b[None, :]
    return np.moveaxis(result.reshape(N, H, W, -1), -1, 1)
''',
}

# ben's copy of ann's: every name changed, comments and spacing changed
RENAMES = {"N": "num", "C": "chans", "H": "height", "W": "width", "F": "nf", "HH": "kh", "WW": "kw",
           "Hout": "oh", "Wout": "ow", "padded": "xpad", "result": "output", "top": "y0", "left": "x0",
           "region": "win", "flat": "pix", "dy": "a", "dx": "q", "r": "row", "c": "col"}

CAT = {
    "ex4_answer": '''
def conv_forward_naive(x, w, b, stride=1, pad=0):
    from numpy.lib.stride_tricks import sliding_window_view
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("nchwij,fcij->nfhw", windows, w) + b[None, :, None, None]
    return out, (x, w, b, stride, pad)
''',
    "ex6_answer": '''
def max_pool_forward(x, size=2, stride=2):
    from numpy.lib.stride_tricks import sliding_window_view
    views = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return views.max(axis=(-2, -1)), (x, size, stride)
''',
    "ex9_answer": '''
def conv1x1_as_matmul(x, w, b):
    return np.einsum("nchw,fc->nfhw", x, w) + b.reshape(1, -1, 1, 1)
''',
}

DAN = {
    "ex4_answer": '''
def conv_forward_naive(x, w, b, stride=1, pad=0):
    kh, kw = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hout = (xp.shape[2] - kh) // stride + 1
    wout = (xp.shape[3] - kw) // stride + 1
    flat_w = w.reshape(w.shape[0], -1)
    out = np.zeros((x.shape[0], w.shape[0], hout, wout))
    for i in range(hout):
        for j in range(wout):
            patch = xp[:, :, i*stride:i*stride+kh, j*stride:j*stride+kw].reshape(x.shape[0], -1)
            out[:, :, i, j] = patch @ flat_w.T + b
    return out, (x, w, b, stride, pad)
''',
    "ex6_answer": '''
def max_pool_forward(x, size=2, stride=2):
    rows = range(0, x.shape[2] - size + 1, stride)
    cols = range(0, x.shape[3] - size + 1, stride)
    out = np.stack([np.stack([x[:, :, i:i + size, j:j + size].max(axis=(2, 3)) for j in cols], axis=-1)
                    for i in rows], axis=-2)
    return out, (x, size, stride)
''',
    "ex9_answer": '''
def conv1x1_as_matmul(x, w, b):
    out = np.tensordot(w, x, axes=([1], [1]))          # (F, N, H, W)
    return out.transpose(1, 0, 2, 3) + b[None, :, None, None]
''',
}


def _renamed(code: str) -> str:
    code = re.sub(r"\b(" + "|".join(sorted(RENAMES, key=len, reverse=True)) + r")\b", lambda m: RENAMES[m.group(1)], code)
    return code.replace("   # every image against every filter", "  # broadcast over images and filters")


def _edits(answers: dict) -> dict:
    """Answer-cell edits: the student's function instead of the solution's (a backward function that
    shares the cell stays the instructor's)."""
    def edit(grade_id):
        def apply(src):
            rest = src[src.index("\n\ndef max_pool_backward"):] if grade_id == "ex6_answer" else ""
            return answers[grade_id].strip() + "\n" + rest
        return apply
    return {grade_id: edit(grade_id) for grade_id in answers}


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory, root):
    subs = tmp_path_factory.mktemp("similarity") / "submissions"
    release, solution = root / "notebooks" / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb"
    students = {"ann": _edits(ANN), "ben": _edits({k: _renamed(v) for k, v in ANN.items()}),
                "cat": _edits(CAT), "dan": _edits(DAN), "eve": {}}   # eve: the instructor's answers
    for student, edits in students.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(student_notebook(release, solution, edits), subs / student / f"{NOTEBOOK}.ipynb")
    (subs / "fay").mkdir()
    (subs / "fay" / f"{NOTEBOOK}.ipynb").write_text("{ not a notebook")
    return subs


def test_the_answers_are_right(class_folder):
    """The class is what it claims: every student's functions compute the right thing (the
    checkers' self-checks), so only the copy, not a shared mistake, can make a pair alike."""
    import numpy as np

    from coursekit.checks import conv as check
    from coursekit.reference import _original

    for student, answers in (("ann", ANN), ("cat", CAT), ("dan", DAN)):
        space = {"np": np, "output_size": _original("conv.output_size")}
        for code in answers.values():
            exec(code, space)
        check.conv_forward(space["conv_forward_naive"], quiet=True)
        check.conv1x1(space["conv1x1_as_matmul"], quiet=True)
        check.max_pool(space["max_pool_forward"], _original("conv.max_pool_backward"), quiet=True)


def test_a_renamed_copy_ranks_first_far_above_independent_answers(class_folder, tmp_path):
    """`coursekit similarity SUBS --notebook 03` as typed, in a working folder, its default --out."""
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([str(Path(sys.executable).parent / "coursekit"), "similarity", str(class_folder),
                           "-n", "03"], cwd=work, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote similarity/similarity-03_conv.html and similarity/similarity-03_conv.csv" in done.stdout, done.stdout
    assert "never a verdict" in done.stdout
    rows = list(csv.DictReader(open(work / "similarity" / "similarity-03_conv.csv")))
    assert len(rows) == 10                                           # 5 readable notebooks: 10 pairs
    first = rows[0]
    assert {first["student_a"], first["student_b"]} == {"ann", "ben"}, rows[:3]
    top, others = float(first["score"]), [float(r["score"]) for r in rows[1:]]
    assert top >= 0.8 and max(others) <= top / 3, (top, others)
    eve = [float(r["score"]) for r in rows if "eve" in (r["student_a"], r["student_b"])]
    assert max(eve) <= 0.1, eve                  # the instructor's own answers are boilerplate
    page = (work / "similarity" / "similarity-03_conv.html").read_text()
    assert "fay: " in page and "not a readable notebook" in page
    assert "never a verdict" in page and "http" not in page.replace("http-equiv", "")


def test_the_report_renders_in_a_browser(class_folder, tmp_path):
    """Opened in headless Chromium, the page shows the ranking and the two answers side by side."""
    import shutil

    from coursekit.grading.review.similarity import similarity

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = Path(__file__).resolve().parents[1]
    page, _, _ = similarity(class_folder, NOTEBOOK, root / "notebooks" / f"{NOTEBOOK}.ipynb",
                            root / "solutions" / f"{NOTEBOOK}.ipynb", tmp_path)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.as_uri())
        text = driver.find_element("tag name", "body").text
        assert "1. ann and ben" in text and "For a person to look at, never a verdict" in text
        marked = driver.find_elements("css selector", "#pair-1 .highlight-red, #pair-1 .highlight-green")
        assert len(marked) >= 2 and all(m.is_displayed() for m in marked[:2])
        shots = Path(os.environ.get("COURSEKIT_SCREENSHOTS") or tmp_path)   # docs/screenshots when asked
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "similarity-03_conv.png"))
    finally:
        driver.quit()


@pytest.mark.parametrize("args, says", [
    (["--notebook", "42"], "--notebook 42: expected one of"),
    (["--notebook", "03", "--missing"], None),
])
def test_bad_input_is_refused_with_a_reason(class_folder, tmp_path, args, says):
    command = [str(Path(sys.executable).parent / "coursekit"), "similarity"]
    if args[-1] == "--missing":
        command += [str(tmp_path / "nowhere"), *args[:-1]]
        says = "no folder"
    else:
        command += [str(class_folder), *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and says in done.stderr, (done.returncode, done.stderr)
