"""Errors raised by the pure ML library.

Each carries a ``field`` so that the web and API layers can name what was wrong
without parsing the message.
"""


class MLError(Exception):
    """Base class: an expected, user-facing problem (never a crash)."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class DataFileError(MLError):
    """The uploaded file cannot be read as a table."""

    code = "bad_file"


class SpecError(MLError):
    """A training spec, target or hyperparameter is invalid."""

    code = "bad_spec"


class ArtifactError(MLError):
    """A stored model artifact is missing, tampered with or of an untrusted type."""

    code = "bad_artifact"
