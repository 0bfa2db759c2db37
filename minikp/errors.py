"""The two kinds of failure a user sees: bad input (exit 2) and a failed operation (exit 1)."""


class InputError(Exception):
    """Bad input: a scenario file, an object, a flag. Exit code 2; nothing was changed.

    Rendered as ``FILE:LINE: Kind "name": field.path: what is wrong; what is valid``;
    parts that are unknown are left out.
    """

    exit_code = 2

    def __init__(self, message, *, file=None, line=None, kind=None, name=None, field=None):
        self.message, self.file, self.line = message, file, line
        self.kind, self.name, self.field = kind, name, field
        super().__init__(str(self))

    def __str__(self):
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        obj = f'{self.kind} "{self.name}": ' if self.kind else ""
        field = f"{self.field}: " if self.field else ""
        return _shorten(f"{where}{obj}{field}{self.message}")


class OperationError(Exception):
    """An operation failed (kernel refused, cluster missing, check failed). Exit code 1."""

    exit_code = 1


def _shorten(text: str, limit: int = 2000) -> str:
    """A safety net for messages that echo a huge value: cut overlong words and the middle."""
    from minikp.scenario.rules import shorten
    text = shorten(text)
    return text if len(text) <= limit else f"{text[:limit // 2]} ... {text[-limit // 2:]}"
