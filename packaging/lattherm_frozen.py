"""Entry script of the frozen (PyInstaller) app.

One executable plays both processes: started plainly it is the GUI; the GUI relaunches it with
``--engine-server`` to get the engine process, which then runs ``lattherm.engine.server`` as ``__main__``
(what ``python -m lattherm.engine.server`` does in a source install). ``--cli ARGS`` runs the headless
``lattherm`` command instead (``lattherm-gui --cli demo``: the smoke check of packaging/build.sh, and the CLI for a
user who only has the bundle). The flags are handled here rather than in lattherm.app so that the GUI package
never reaches into the engine.
"""

import runpy
import sys

ENGINE_FLAG = "--engine-server"
CLI_FLAG = "--cli"

if __name__ == "__main__":
    if ENGINE_FLAG in sys.argv[1:]:
        sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a != ENGINE_FLAG]
        runpy.run_module("lattherm.engine.server", run_name="__main__", alter_sys=True)
    elif sys.argv[1:2] == [CLI_FLAG]:
        from lattherm.engine.cli.main import main as cli

        sys.exit(cli(sys.argv[2:]))
    else:
        from lattherm.app.main import main

        sys.exit(main())
