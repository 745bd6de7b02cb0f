"""MLflow's error codes and the exception that carries one to the answer (``{"error_code", "message"}``).

A module of its own so that both the dispatcher (``protocol``) and the authentication it calls
(``auth``) raise it without importing each other.
"""

from __future__ import annotations

STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_CONFLICT": 409,
    "NOT_IMPLEMENTED": 501,
    "INTERNAL_ERROR": 500,
}


class MlflowError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status or STATUS.get(code, 400)
