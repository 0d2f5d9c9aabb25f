"""Entry script of the frozen (PyInstaller) app.

One executable plays both processes: started plainly it is the GUI; the GUI relaunches it with
``--engine-server`` to get the engine process, which then runs ``lattherm.engine.server`` as ``__main__``
(what ``python -m lattherm.engine.server`` does in a source install). The flag is handled here rather than in
lattherm.app so that the GUI package never reaches into the engine.
"""

import runpy
import sys

ENGINE_FLAG = "--engine-server"

if __name__ == "__main__":
    if ENGINE_FLAG in sys.argv[1:]:
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a != ENGINE_FLAG]
        runpy.run_module("lattherm.engine.server", run_name="__main__", alter_sys=True)
    else:
        from lattherm.app.main import main

        sys.exit(main())
