"""One error type for every file a user writes (packs, agent.yaml, collector.yaml): file, line, field, what was expected."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad user input. The CLI prints `str(err)` and exits with code 2."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.field) if p]
        return ": ".join([*parts, self.message])


class ConfigErrors(ConfigError):
    """Several independent errors found in one pass, so the user fixes them all at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    @staticmethod
    def of(errors: list[ConfigError]) -> ConfigError:
        """The error to raise for `errors` (not empty): a single one as itself, several together."""
        return errors[0] if len(errors) == 1 else ConfigErrors(errors)
