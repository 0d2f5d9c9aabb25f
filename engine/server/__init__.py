"""The engine process: ``python -m lattherm.engine.server`` speaks JSON lines on stdin/stdout.

Requests ``{"id", "method", "params"}`` get ``{"id", "result"}`` or ``{"id", "error": {"type", "message"}}``;
jobs report ``{"event", "job", "data"}``; a ``heartbeat`` event comes every second. See ``protocol.py``.
This module imports nothing heavy, so the GUI may read ``PROTOCOL_VERSION`` without pulling in torch.
"""

PROTOCOL_VERSION = 2  # 2: paint, evaluate and phase_diagram are jobs

__all__ = ["PROTOCOL_VERSION"]
