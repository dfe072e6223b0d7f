"""Errors the core raises; the API turns them into the OpenAI error envelope."""

from __future__ import annotations


class PlatformError(Exception):
    """An error with everything the OpenAI envelope needs."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or default_type(status)
        self.code = code
        self.param = param
        self.headers = headers or {}

    def envelope(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def default_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> PlatformError:
    return PlatformError(400, message, param=param, code=code)


def not_found(message: str, code: str | None = None, param: str | None = None) -> PlatformError:
    return PlatformError(404, message, code=code, param=param)


def model_not_found(model: str) -> PlatformError:
    return PlatformError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def unavailable(message: str, code: str = "service_unavailable") -> PlatformError:
    return PlatformError(503, message, code=code, headers={"Retry-After": "5"})
