"""Errors that name what went wrong for the user (file, key, field, row)."""


class ZooError(Exception):
    """A user-facing error: the CLI prints its message as one line, without a traceback."""


class CheckpointError(ZooError):
    """A checkpoint file or its keys do not match what the model expects."""


class ConfigError(ZooError, ValueError):
    """A config.json (or recipe YAML) field is missing, unknown or inconsistent."""


class UnknownModelError(ZooError, KeyError):
    """A name that is neither a registry entry nor a local directory."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class OfflineError(ZooError):
    """Weights are not cached and the hub cannot be reached."""
