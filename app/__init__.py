"""lattherm desktop GUI: Qt windows, panels, plots, the lattice editor and the client of the engine process.

Nothing here imports torch: the GUI starts fast and talks to the engine (its own process) over JSON lines.
Qt is imported lazily, so ``lattherm-gui --version`` works without a display.
"""
