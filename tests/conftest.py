import pytest

from qpmopt.backends.base import _load_class


def pytest_collection_modifyitems(config, items):
    # @pytest.mark.solver("name") becomes a skip when that backend is not usable here.
    for item in items:
        for mark in item.iter_markers("solver"):
            name = mark.args[0]
            if not _load_class(name)[0].availability():
                item.add_marker(pytest.mark.skip(reason=f"backend {name!r} not available"))
