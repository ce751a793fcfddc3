"""The UI tests' shared state: one small demo and one real webserver for the package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from retraining_assets.settings import Settings
from retraining_assets_tests.defs.ui_state import UiState, build_state, environment, webserver
from retraining_assets_tests.reports_client import report_server_thread


@pytest.fixture(scope="package")
def ui_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiState]:
    home = tmp_path_factory.mktemp("ui") / ".retrain"
    with ExitStack() as stack:
        # the webserver's settings: RETRAIN_HOME with the default (local) artifact root
        reports = stack.enter_context(report_server_thread(Settings(home=home)))
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in environment(home, reports).items():
            patch.setenv(name, value)
        simulation, runs = build_state(home)
        stack.callback(simulation.instance.dispose)
        url = stack.enter_context(webserver(home, home / "webserver.log", reports))
        yield UiState(
            url, simulation.instance, runs.partitions, runs.retraining, home, reports,
            runs.reference, runs.backtest,
        )  # fmt: skip
