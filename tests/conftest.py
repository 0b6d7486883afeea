from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def released(tmp_path_factory, root) -> Path:
    """The student release, generated fresh from solutions/ into a temporary folder."""
    from coursekit.grading.course.release import release

    out = tmp_path_factory.mktemp("release")
    release(root, out)
    return out


def pytest_configure(config):
    # nbgrader runs `alembic`; make sure the venv's bin/ is on PATH as the CLI does.
    from coursekit.grading.course.directory import ensure_tools_on_path

    ensure_tools_on_path()
    # What coursekit caches (the self-checks' recordings) goes to this test run's own folder:
    # shared by its tests, never the user's ~/.cache, never one an earlier run left.
    import os
    import tempfile

    if "COURSEKIT_CACHE" not in os.environ:  # the xdist workers inherit the one made here
        os.environ["COURSEKIT_CACHE"] = tempfile.mkdtemp(prefix="coursekit-test-cache-")
        config._coursekit_cache = os.environ["COURSEKIT_CACHE"]


def pytest_unconfigure(config):
    import shutil

    if getattr(config, "_coursekit_cache", None):
        shutil.rmtree(config._coursekit_cache, ignore_errors=True)


#: The class runs behind each long group of tests, in seconds on the 2-core development machine
#: (pytest --durations): CI's two xdist workers take the groups longest first, so neither is
#: left with a long one at the end. A group is a test file, or, where one file grades several
#: independent classes, one class (its notebook, or its fixture).
WEIGHTS = {"test_wrong_variants.py[07_scenes]": 150, "test_wrong_variants.py[03_conv]": 115,
           "test_wrong_variants.py[04_normalisation]": 100, "test_wrong_variants.py[06_architectures]": 85,
           "test_wrong_variants.py[02_layers]": 70, "test_wrong_variants.py[05_initialisation]": 45,
           "test_term.py": 180, "test_cluster.py": 170, "test_hostile.py[hostile]": 160,
           "test_hostile.py[self_reports]": 150, "test_autograde.py": 150, "test_cli.py": 125,
           "test_readme.py": 120, "test_fair_answers.py[04_normalisation]": 55,
           "test_fair_answers.py[02_layers]": 35, "test_distribution.py": 70,
           "test_validate.py": 35}


def _group(item) -> str:
    name = item.path.name
    if hasattr(item, "callspec") and "graded" in item.callspec.params:   # a class per notebook
        return f"{name}[{item.callspec.params['graded']}]"
    if name == "test_hostile.py":
        return f"{name}[{'self_reports' if 'self_reports' in item.fixturenames else 'hostile'}]"
    return name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Group the tests for xdist (``--dist loadgroup``: a group runs on one worker, so its
    module's class run is made once) and put the longest groups first."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-WEIGHTS.get(_group(item), 0), order[id(item)]))
