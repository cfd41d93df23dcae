"""The one exception type robex raises for bad input; ``run.py`` prints it as one line."""


class RobexError(Exception):
    """A problem the user can fix (bad option value, missing data, ...); the message says how."""


def check_range(name: str, value: float, low: float, high: float) -> float:
    """Return ``value`` as float, or raise RobexError if it is NaN or outside [low, high]."""
    value = float(value)
    if value != value or not (low <= value <= high):
        raise RobexError(f"{name}={value} is out of range: it must lie in [{low}, {high}]")
    return value


def user_error(exc: BaseException | None) -> RobexError | None:
    """The RobexError behind ``exc`` (Hydra wraps errors raised while instantiating), if any."""
    while exc is not None:
        if isinstance(exc, RobexError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
