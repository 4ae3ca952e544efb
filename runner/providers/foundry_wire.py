"""Foundry's wire rules the foundry provider applies, with no SDK: which endpoints are accepted,
which statuses are transient and how long a response asks to wait, what an error body says.

Role in the flow: `foundry` (the provider) maps every SDK and OpenAI exception with these
helpers; they are pure functions of their inputs (an exception is read by duck typing, never
imported), so nothing here pays the SDK's import time.

Invariants: plain http is accepted only on loopback (`check_endpoint`); 408, 429 and 5xx are
transient; a `preview_feature_required` answer gets a hint naming the Environment's
`preview_features:` and the flags the service asked for.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from runner.providers.base import ProviderError

__all__ = [
    "FEATURES_HEADER",
    "PREVIEW_FEATURE_REQUIRED",
    "TRANSIENT_STATUSES",
    "check_endpoint",
    "is_loopback_host",
    "is_transient",
    "preview_hint",
    "retry_after_seconds",
    "service_error",
]

TRANSIENT_STATUSES = frozenset({408, 429})
FEATURES_HEADER = "Foundry-Features"
PREVIEW_FEATURE_REQUIRED = "preview_feature_required"


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str) -> bool:
    """Validate `endpoint`; True when it is plain http on loopback (the emulator)."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return False
    if parts.scheme == "http" and parts.hostname:
        if is_loopback_host(parts.hostname):
            return True
        raise ProviderError(
            f"endpoint {endpoint!r} uses plain http to {parts.hostname}; use https "
            "(http is only accepted on loopback, for `runner emulator`)",
            code="configuration",
        )
    raise ProviderError(
        f"endpoint {endpoint!r} is not a URL; expected "
        "https://<account>.services.ai.azure.com/api/projects/<project>",
        code="configuration",
    )


def is_transient(status: int | None) -> bool:
    return status is not None and (status in TRANSIENT_STATUSES or status >= 500)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The delay a response asks for: `retry-after-ms`, `x-ms-retry-after-ms`, `Retry-After`."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    for key in ("retry-after-ms", "x-ms-retry-after-ms"):
        try:
            return max(0.0, float(lowered[key]) / 1000)
        except (KeyError, ValueError):
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def service_error(exc: Any) -> tuple[str | None, str | None]:
    """(code, message) the service sent, from the parsed error, the SDK's error model, or the
    body (the SDK's re-raised 403 keeps only the model; a mapped 404 only `.error`)."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        return error.code, getattr(error, "message", None)
    model = getattr(exc, "model", None)
    inner = getattr(model, "error", None) if model is not None else None
    if inner is not None and getattr(inner, "code", None):
        return inner.code, getattr(inner, "message", None)
    response = getattr(exc, "response", None)
    try:
        body = json.loads(response.text()) if response is not None else None
    except Exception:  # no body, not JSON, not readable: the status and reason will do
        return None, None
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("code"), str):
        message = inner.get("message")
        return inner["code"], message if isinstance(message, str) else None
    return None, None


def preview_hint(message: str) -> str:
    """What to do about a `preview_feature_required` answer, naming the Environment field."""
    flags = sorted(set(re.findall(r"\b[A-Za-z]+=V\d+Preview\b", message)))
    shown = ", ".join(flags) if flags else "<Feature>=V1Preview"
    return (
        f"; opt in with `preview_features: [{shown}]` on the Environment "
        f"(sent as the {FEATURES_HEADER} header)"
    )
