"""The few exceptions the project raises on purpose, each mapped to one HTTP status or exit code."""


class HookError(Exception):
    """Base class: anything we raise deliberately, with a message fit to show a user."""


class ConfigError(HookError):
    """A setting is missing or malformed; raised at start-up, never while serving."""


class BadRequest(HookError):  # noqa: N818 - named after the HTTP answer it becomes
    """The client sent something we will not store; the message names what is wrong."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLarge(BadRequest):
    status = 413


class Forbidden(BadRequest):
    status = 403


class RequestTimeout(BadRequest):
    status = 408


class BadImage(HookError):  # noqa: N818 - a bad image, not an error of ours
    """Stored image bytes do not decode; fails that task, never the worker."""


class CamioError(HookError):
    """Camio's hooks API: one line a person can act on (no token, an HTTP error, no network)."""


class BuildError(HookError):
    """A model could not be fetched, checked or converted; the message says which and why."""
