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


#: The class runs behind each long test file, in seconds on the 2-core development machine
#: (pytest --durations): CI's two xdist workers take the files longest first (pyproject's
#: --dist loadfile --no-loadscope-reorder), so neither is left with a long one at the end.
WEIGHTS = {"test_wrong_variants.py": 530, "test_hostile.py": 300, "test_term.py": 150,
           "test_autograde.py": 150, "test_cluster.py": 140, "test_cli.py": 125, "test_readme.py": 115,
           "test_fair_answers.py": 100, "test_personal.py": 90, "test_distribution.py": 60, "test_validate.py": 50}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The longest test files first (a file's tests stay together and in order)."""
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-WEIGHTS.get(item.path.name, 0), order[id(item)]))
