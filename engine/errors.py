"""User-facing errors: one line naming the problem; the CLI maps them to exit code 2."""


class LatthermError(Exception):
    """A problem with the user's input or files (bad temperature, unknown model, corrupt checkpoint...)."""

    exit_code = 2


class ConfigError(LatthermError):
    """A configuration file or option is malformed."""


class CheckpointError(LatthermError):
    """A checkpoint or model folder is missing, truncated or foreign."""
