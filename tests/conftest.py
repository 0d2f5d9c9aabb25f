"""The fixture set every test file shares: a private data root, one torch thread, the tiny-config builder, and an
engine client with no engine for GUI panels."""

import os

# Before anything imports Qt: no test may need a screen.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402
import torch  # noqa: E402

import _configs  # noqa: E402


@pytest.fixture(autouse=True)
def lattherm_home(tmp_path, monkeypatch):
    """Every test gets its own empty LATTHERM_HOME, so no test reads or writes the user's runs."""
    home = tmp_path / "lattherm-home"
    home.mkdir()
    monkeypatch.setenv("LATTHERM_HOME", str(home))
    return home


def _one_torch_thread(node):
    """Set the torch thread count for ``node`` (1, or n where it is marked ``@pytest.mark.threads(n)``), then give
    back the count it found: training sets the count process-wide (``[training] threads``), whatever it set
    meanwhile must not leak into the next test."""
    marker = node.get_closest_marker("threads")
    before = torch.get_num_threads()
    torch.set_num_threads(marker.args[0] if marker else 1)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def torch_threads_module(request):
    """One torch thread for module-scoped fixtures too (they are set up before any test's own fixtures)."""
    yield from _one_torch_thread(request.node)


@pytest.fixture(autouse=True)
def torch_threads(request):
    """One torch thread per test unless it asks for more with ``@pytest.mark.threads(n)``: the tensors here are
    tiny, so one thread is fastest, and it spares a shared machine oversubscribed OpenMP threads."""
    yield from _one_torch_thread(request.node)


class OfflineEngine:
    """An engine client with no engine behind it: a panel built on it shows its form and never gets an answer."""

    hello: dict = {}

    def is_ready(self) -> bool:
        return False

    def request(self, method, params=None, on_result=None, on_error=None) -> None:
        pass


@pytest.fixture
def offline_engine():
    """A client for GUI panels under test without an engine process (forms, plots, buttons)."""
    return OfflineEngine()


@pytest.fixture
def tiny_config():
    """The builder of tests/_configs.py: ``tiny_config(size, kind, arch, steps, **{"table.key": value})`` -> TOML."""
    return _configs.tiny_config
