"""Start the desktop app: one QApplication, the main window, the engine process, the qasync event loop."""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path


def _style(app) -> None:
    from lattherm.engine import paths

    qss = Path(paths.RESOURCES) / "style" / "lattherm.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))


async def _main() -> int:
    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance()
    done = asyncio.get_event_loop().create_future()
    app.aboutToQuit.connect(functools.partial(lambda f: f.done() or f.set_result(0), done))
    window = MainWindow(first_look=True)
    window.show()
    window.start_engine()
    result = await done
    window.client.shutdown()
    return result


def run() -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("lattherm")
    _style(app)
    try:
        return qasync.run(_main()) or 0
    except asyncio.CancelledError:
        return 0
