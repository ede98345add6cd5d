"""The exceptions the project raises on purpose. Every one derives from HookError.

Domain errors say what is wrong and where (`field`); they know nothing of HTTP. The web layer
turns them into answers in one place (`hook.web.app.status_for`), the worker into a task's failure,
the command line into a message and an exit code.
"""


class HookError(Exception):
    """Base class: anything we raise deliberately, with a message fit to show a user."""


class ConfigError(HookError):
    """A setting is missing or malformed; raised at start-up, never while serving."""


class Refused(HookError):  # noqa: N818 - named for what happens to the input
    """Input we will not take; the message names what is wrong, `field` where (if anywhere)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Invalid(Refused):
    """Malformed or not allowed: a bad field, a URL to a host not allowed, unreadable JSON."""


class TooLarge(Refused):
    """Over a size limit (body, image bytes, the event's fields)."""


class WrongKey(Refused):
    """The API key in the path is not this hook's."""


class TooSlow(Refused):
    """The client did not send its body in time."""


class Busy(Refused):
    """Not now: this process takes as much of it at once as it will; try again in a second."""


class Forbidden(Refused):
    """Not from here: a page's action sent by another site's page, or by no page at all."""


class Conflict(Refused):
    """Not in this state: retrying a task that is not failed, forgetting one a worker has."""


class NotFound(Refused):
    """Nothing by that name: no such task, or no picture of that image (not made, or expired)."""


class BadImage(Invalid):
    """Image bytes that do not identify or decode: refused at ingest, fail their task later."""


class CamioError(HookError):
    """Camio's hooks API: one line a person can act on (no token, an HTTP error, no network)."""


class BuildError(HookError):
    """A model could not be fetched, checked or converted; the message says which and why."""


class BadSignature(HookError):  # noqa: N818 - named for what the request has
    """A callback's Standard Webhooks signature does not check out (the receiver's side)."""
