"""The `foundry` provider: Azure AI Foundry agents through the real azure-ai-projects SDK.

Role in the flow: plan/apply read and write agents through it; the runtime opens conversations
and asks for responses through the SDK's OpenAI client (requests and replies, streamed or not,
in `foundry_responses`). It is the only module that imports
`azure.*` (and `openai`), and only inside `FoundryProvider.__init__`, so nothing else pays the
SDK's import time.

Invariants:
- https endpoints authenticate with `DefaultAzureCredential` (unless a credential is given).
  Plain http is accepted only on loopback (127.0.0.0/8, localhost, ::1: `runner emulator`),
  with a static development token and a per-call policy that lifts the SDK's https check.
- The SDK's and the OpenAI client's own retries are off: runner's executor owns retries, so that
  it can first look for a version a lost create already made (by its definition hash) instead
  of blindly creating a duplicate.
- Exceptions are mapped once, here: 408/429/5xx and connection errors -> `TransientError` (with
  `retry_after` from `retry-after-ms` / `Retry-After`), 404 -> `NotFoundError`, anything else
  -> `ProviderError` carrying the service's code and message.
- `request_count()` counts HTTP requests actually sent (both clients), thread-safely.
"""

from __future__ import annotations

import email.utils
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from runner.providers.base import (
    AgentVersion,
    ConversationMessage,
    NotFoundError,
    ProviderError,
    Reply,
    TextSink,
    ToolOutput,
    TransientError,
)
from runner.providers.foundry_responses import read_stream, reply_of, response_request

T = TypeVar("T")
LIST_PAGE_SIZE = 100
TRANSIENT_STATUSES = frozenset({408, 429})
DEV_TOKEN = "runner-local-development-token"


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


def _is_transient(status: int | None) -> bool:
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


def _azure_error(exc: Exception, what: str) -> ProviderError:
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
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or (exc.reason if status else None)
        message = getattr(error, "message", None) or exc.message or str(exc)
        text = f"{what}: {status} {code}: {message}" if status else f"{what}: {message}"
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return NotFoundError(text, code=code, status=404)
        if _is_transient(status):
            response: Any = exc.response
            headers = response.headers if response is not None else None
            return TransientError(
                text, retry_after=retry_after_seconds(headers), code=code, status=status
            )
        if isinstance(exc, ClientAuthenticationError) and not status:
            return ProviderError(
                f"{what}: could not authenticate to Azure: {message} "
                "(sign in with `az login` or set the AZURE_* variables)",
                code="authentication",
            )
        return ProviderError(text, code=code, status=status)
    return ProviderError(f"{what}: {exc}")


def _openai_error(exc: Exception, what: str) -> ProviderError:
    """Map an openai exception (APIStatusError, APIConnectionError, ...)."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return TransientError(f"{what}: connection failed: {exc}", code="connection")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") or getattr(exc, "code", None) or None
        message = body.get("message") or exc.message
        text = f"{what}: {status} {code}: {message}"
        if status == 404:
            return NotFoundError(text, code=code, status=status)
        if _is_transient(status):
            return TransientError(
                text,
                retry_after=retry_after_seconds(dict(exc.response.headers)),
                code=code,
                status=status,
            )
        return ProviderError(text, code=code, status=status)
    return ProviderError(f"{what}: {exc}")


def _version_from_sdk(model: Any) -> AgentVersion:
    """AgentVersionDetails (a MutableMapping over the wire JSON) -> AgentVersion."""
    data: dict[str, Any] = model.as_dict() if hasattr(model, "as_dict") else dict(model)
    created = data.get("created_at", 0)
    if hasattr(created, "timestamp"):
        created = created.timestamp()
    return AgentVersion(
        name=str(data["name"]),
        version=str(data["version"]),
        definition=dict(data.get("definition") or {}),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        description=data.get("description"),
        created_at=int(created or 0),
    )


class _StaticCredential:
    """A TokenCredential for loopback development: the emulator accepts any bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(DEV_TOKEN, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class FoundryProvider:
    """The Provider Protocol on a Foundry project endpoint (or the emulator on loopback)."""

    name = "foundry"
    remote = True

    def __init__(
        self, endpoint: str, *, credential: Any | None = None, timeout: float = 60.0
    ) -> None:
        plain_http = check_endpoint(endpoint)
        self.endpoint = endpoint.rstrip("/")
        # How long after it was sent a request may still land: the executor's stale-lock grace.
        self.request_timeout = timeout
        self._count = 0
        self._count_lock = threading.Lock()

        import openai
        from azure.ai.projects import AIProjectClient
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        provider = self

        class CountRequests(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Runs once per request sent (retries are off, so per call = per request)."""

            def on_request(self, request: Any) -> None:
                provider._tick()

        class AllowHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Lifts the bearer policy's https check (loopback endpoints only)."""

            def on_request(self, request: Any) -> None:
                request.context["enforce_https"] = False

        self._owned_credential: Any = None
        policies: list[Any] = [CountRequests()]
        if plain_http:
            policies.append(AllowHttp())
        if credential is None:
            if plain_http:
                credential = _StaticCredential()
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
                self._owned_credential = credential
        self._credential = credential
        self._client = AIProjectClient(
            endpoint=self.endpoint,
            credential=credential,
            per_call_policies=policies,
            retry_total=0,
            connection_timeout=min(10.0, timeout),
            read_timeout=timeout,
        )

        def count_openai_request(request: Any) -> None:
            provider._tick()

        self._openai = self._client.get_openai_client(
            max_retries=0,
            timeout=timeout,
            http_client=openai.DefaultHttpxClient(
                event_hooks={"request": [count_openai_request]}, timeout=timeout
            ),
        )

    # ---- plumbing

    def _tick(self) -> None:
        with self._count_lock:
            self._count += 1

    def request_count(self) -> int:
        with self._count_lock:
            return self._count

    @contextmanager
    def _azure(self, what: str) -> Iterator[None]:
        from azure.core.exceptions import AzureError

        try:
            yield
        except AzureError as exc:
            raise _azure_error(exc, what) from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._azure(what):
            return fn()

    def close(self) -> None:
        self._openai.close()
        self._client.close()
        if self._owned_credential is not None:
            self._owned_credential.close()

    # ---- agents

    def list_agents(self) -> list[AgentVersion]:
        def fetch() -> list[AgentVersion]:
            pager = self._client.agents.list(limit=LIST_PAGE_SIZE, order="asc")
            return [_version_from_sdk(agent["versions"]["latest"]) for agent in pager]

        return self._call("list agents", fetch)

    def get_agent(self, name: str) -> AgentVersion | None:
        try:
            agent = self._call(f"get agent {name!r}", lambda: self._client.agents.get(name))
        except NotFoundError:
            return None
        return _version_from_sdk(agent["versions"]["latest"])

    def list_versions(self, name: str) -> list[AgentVersion]:
        def fetch() -> list[AgentVersion]:
            pager = self._client.agents.list_versions(name, limit=LIST_PAGE_SIZE, order="asc")
            return [_version_from_sdk(v) for v in pager]

        try:
            return self._call(f"list versions of {name!r}", fetch)
        except NotFoundError:
            return []

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        created = self._call(
            f"create a version of {name!r}",
            lambda: self._client.agents.create_version(
                name,
                definition=cast(Any, dict(definition)),
                metadata=dict(metadata),
                description=description,
            ),
        )
        return _version_from_sdk(created)

    def delete_agent(self, name: str) -> None:
        self._call(f"delete agent {name!r}", lambda: self._client.agents.delete(name))

    def delete_version(self, name: str, version: str) -> None:
        self._call(
            f"delete version {version} of {name!r}",
            lambda: self._client.agents.delete_version(name, version),
        )

    # ---- runtime

    def create_conversation(self, *, metadata: Mapping[str, str] | None = None) -> str:
        import openai

        try:
            if metadata:
                conversation = self._openai.conversations.create(metadata=dict(metadata))
            else:
                conversation = self._openai.conversations.create()
        except openai.OpenAIError as exc:
            raise _openai_error(exc, "create a conversation") from exc
        return str(conversation.id)

    def conversation_messages(
        self, conversation_id: str, *, limit: int = 200
    ) -> list[ConversationMessage]:
        import openai

        latest: list[ConversationMessage] = []
        try:  # newest first, the SDK's pager follows the cursor
            for item in self._openai.conversations.items.list(
                conversation_id, limit=min(limit, 100), order="desc"
            ):
                if len(latest) >= limit:
                    break
                if getattr(item, "type", None) == "message":
                    parts = getattr(item, "content", None) or []
                    text = "".join(str(getattr(part, "text", "") or "") for part in parts)
                    latest.append(ConversationMessage(str(getattr(item, "role", "")), text))
        except openai.OpenAIError as exc:
            raise _openai_error(exc, f"read conversation {conversation_id!r}") from exc
        return latest[::-1]

    def respond(
        self,
        *,
        conversation_id: str,
        agent_name: str,
        agent_version: str | None,
        text: str,
        structured_inputs: Mapping[str, Any] | None = None,
        tool_outputs: Sequence[ToolOutput] = (),
        previous_response_id: str | None = None,
        on_text: TextSink | None = None,
    ) -> Reply:
        import openai

        request = response_request(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
            structured_inputs=structured_inputs,
            tool_outputs=tool_outputs,
            previous_response_id=previous_response_id,
        )
        try:
            if on_text is None:
                return reply_of(self._openai.responses.create(**request))
            with self._openai.responses.create(**request, stream=True) as events:
                return read_stream(events, on_text)
        except openai.OpenAIError as exc:
            raise _openai_error(exc, f"respond as {agent_name!r}") from exc
