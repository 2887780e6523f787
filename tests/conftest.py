import pytest

from qpmopt.backends import backend_class


def pytest_collection_modifyitems(config, items):
    # @pytest.mark.solver("name") becomes a skip when that backend is not usable here.
    for item in items:
        for mark in item.iter_markers("solver"):
            name = mark.args[0]
            if not backend_class(name).availability():
                item.add_marker(pytest.mark.skip(reason=f"backend {name!r} not available"))


# Hypothesis: a bounded run in CI, a long one on request (QPMOPT_HYPOTHESIS=long).
import os  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("QPMOPT_HYPOTHESIS", "ci"))
