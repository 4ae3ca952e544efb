"""How the foundry provider turns the SDK's and the OpenAI client's exceptions into runner's.

Role in the flow: `FoundryProvider` (`runner.providers.foundry`) wraps every agents call and
every conversations/responses call; what fails there comes through `azure_error` (azure-core's
exceptions) or `openai_error` (the OpenAI client's). The wire rules they apply (transient
statuses, `Retry-After`, the service's error body, the preview-feature hint) are
`runner.providers.foundry_wire`'s; the SDKs are imported only when an exception is mapped.

Invariants: 408/429/5xx and connection failures -> `TransientError` (with the wait the response
asked for), 404 -> `NotFoundError`, anything else -> `ProviderError` with the service's code and
message; a credential chain's dozen-line failure becomes one line saying how to sign in.
"""

from __future__ import annotations

from typing import Any

from runner.providers.base import NotFoundError, ProviderError, TransientError
from runner.providers.foundry_wire import (
    PREVIEW_FEATURE_REQUIRED,
    is_transient,
    preview_hint,
    retry_after_seconds,
    service_error,
)

__all__ = ["azure_error", "openai_error"]


def azure_error(exc: Exception, what: str) -> ProviderError:
    """Map an azure-core exception (HttpResponseError, ServiceRequestError, ...)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientError(f"{what}: connection failed: {exc}", code="connection")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        service_code, service_message = service_error(exc)
        code = service_code or (exc.reason if status else None)
        message = service_message or exc.message or str(exc)
        if code == PREVIEW_FEATURE_REQUIRED:
            message += preview_hint(message)
        text = f"{what}: {status} {code}: {message}" if status else f"{what}: {message}"
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return NotFoundError(text, code=code, status=404)
        if is_transient(status):
            response: Any = exc.response
            headers = response.headers if response is not None else None
            return TransientError(
                text, retry_after=retry_after_seconds(headers), code=code, status=status
            )
        if isinstance(exc, ClientAuthenticationError) and not status:
            # The credential chain's own text is a dozen lines, one per credential it tried:
            # the user needs what to do, once.
            return ProviderError(
                f"{what}: no Azure credential found; sign in with `az login`, or set "
                "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                code="authentication",
            )
        return ProviderError(text, code=code, status=status)
    return ProviderError(f"{what}: {exc}")


def openai_error(exc: Exception, what: str) -> ProviderError:
    """Map an openai exception (APIStatusError, APIConnectionError, ...)."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return TransientError(f"{what}: connection failed: {exc}", code="connection")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or getattr(exc, "code", None) or None
        message = body.get("message") or exc.message
        if code == PREVIEW_FEATURE_REQUIRED:
            message += preview_hint(message)
        text = f"{what}: {status} {code}: {message}"
        if status == 404:
            return NotFoundError(text, code=code, status=status)
        if is_transient(status):
            return TransientError(
                text,
                retry_after=retry_after_seconds(dict(exc.response.headers)),
                code=code,
                status=status,
            )
        return ProviderError(text, code=code, status=status)
    return ProviderError(f"{what}: {exc}")
