"""What the services refuse, in domain terms: the API layer (server.api.errors) gives each kind
its HTTP status and the OpenAI error envelope, in one table. Nothing below the API names a
status, so a service can be called from a job, a test or a script as well as from a route.

Each carries the message for the user, and optionally the request field at fault (`param`) and
a machine-readable `code`, which the envelope passes on.
"""


class ServiceError(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def under(self, param: str) -> "ServiceError":
        """The same refusal about a field nested under `param` (a candidate of an eval...)."""
        return type(self)(f"{param}: {self.message}", param=param, code=self.code)


class InvalidRequest(ServiceError, ValueError):
    """The request is wrong: a value, a combination of fields, a prompt too long."""


class NotFound(ServiceError):
    """What the request names does not exist: a model, a weight set, a job."""


class Conflict(ServiceError):
    """The request is valid but the state does not allow it now: a job already running, one
    that has not finished, a result not there yet."""


class Unsupported(ServiceError, ValueError):
    """A feature this server does not offer (a stored response it does not keep...)."""


class Overloaded(ServiceError):
    """More requests wait for the engine than the server queues (MPO_MAX_WAITING); trying again
    after `retry_after_s` may succeed."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, code="server_is_overloaded")
        self.retry_after_s = retry_after_s


class RateLimited(ServiceError):
    """One API key has as many requests in flight as it may (MPO_MAX_IN_FLIGHT_PER_KEY)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after_s = retry_after_s


class ShuttingDown(ServiceError):
    """The server is stopping (a drain after SIGTERM, or its engine died): another replica, or
    this one once restarted, will answer."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, code="server_shutting_down")
        self.retry_after_s = retry_after_s
