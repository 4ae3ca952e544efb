"""The `foundry` provider: Azure AI Foundry agents through the real azure-ai-projects SDK.

Role in the flow: plan/apply read and write agents through it; the runtime opens conversations
and asks for responses through the SDK's OpenAI client (requests and replies, streamed or not,
in `foundry_responses`). It and `foundry_errors` are the only modules that import
`azure.*` (and `openai`), and only when a provider is made or an exception mapped, so nothing
else pays the SDK's import time; the OpenAI client (conversations, responses) is made on first
use, so plan and apply never build it.

Invariants:
- https endpoints authenticate with `DefaultAzureCredential` (unless a credential is given).
  Plain http is accepted only on loopback (127.0.0.0/8, localhost, ::1: `runner emulator`),
  with a static development token and a per-call policy that lifts the SDK's https check.
- The SDK's and the OpenAI client's own retries are off: runner's executor owns retries, so that
  it can first look for a version a lost create already made (by its definition hash) instead
  of blindly creating a duplicate.
- Exceptions are mapped once, by `foundry_errors`: 408/429/5xx and connection errors ->
  `TransientError` (with `retry_after` from `retry-after-ms` / `Retry-After`), 404 ->
  `NotFoundError`, anything else -> `ProviderError` carrying the service's code and message
  (read from the error body when the SDK re-raised without it, as it does for 403
  `preview_feature_required`, whose message then names the Environment's `preview_features:`).
- `preview_features` (the Environment's) go out as the `Foundry-Features` header on every
  agents call, and as a default header of the OpenAI client.
- `request_count()` counts HTTP requests actually sent (both clients), thread-safely.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from runner.providers.base import (
    AgentVersion,
    ConversationMessage,
    NotFoundError,
    Reply,
    TextSink,
    ToolOutput,
)
from runner.providers.foundry_errors import azure_error, openai_error
from runner.providers.foundry_responses import read_stream, reply_of, response_request
from runner.providers.foundry_wire import (
    FEATURES_HEADER,
    check_endpoint,
)

T = TypeVar("T")
LIST_PAGE_SIZE = 100
DEV_TOKEN = "runner-local-development-token"
MAX_CONNECTIONS = 64  # keep-alive connections kept per provider (>= any sensible parallelism)


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
        description=data.get("description") or None,  # the service sends "" for none
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
        self,
        endpoint: str,
        *,
        credential: Any | None = None,
        timeout: float = 60.0,
        preview_features: Sequence[str] = (),
    ) -> None:
        plain_http = check_endpoint(endpoint)
        features = ",".join(dict.fromkeys(f.strip() for f in preview_features if f.strip()))
        self.endpoint = endpoint.rstrip("/")
        # How long after it was sent a request may still land: the executor's stale-lock grace.
        self.request_timeout = timeout
        self._count = 0
        self._count_lock = threading.Lock()

        import requests
        from azure.ai.projects import AIProjectClient
        from azure.core.pipeline.policies import SansIOHTTPPolicy
        from azure.core.pipeline.transport import RequestsTransport
        from urllib3.util.retry import Retry

        provider = self

        class CountRequests(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Runs once per request sent (retries are off, so per call = per request)."""

            def on_request(self, request: Any) -> None:
                provider._tick()

        class AllowHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Lifts the bearer policy's https check (loopback endpoints only)."""

            def on_request(self, request: Any) -> None:
                request.context["enforce_https"] = False

        class FoundryFeatures(SansIOHTTPPolicy):  # type: ignore[type-arg]
            """Opts in to the environment's preview features on every agents call."""

            def on_request(self, request: Any) -> None:
                request.http_request.headers[FEATURES_HEADER] = features

        self._owned_credential: Any = None
        policies: list[Any] = [CountRequests()]
        if plain_http:
            policies.append(AllowHttp())
        if features:
            policies.append(FoundryFeatures())
        if credential is None:
            if plain_http:
                credential = _StaticCredential()
            else:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
                self._owned_credential = credential
        self._credential = credential
        # One keep-alive connection per operation in flight: azure-core's default pool keeps 10,
        # so a wider apply would open (and throw away) a new connection per extra request.
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4,
            pool_maxsize=MAX_CONNECTIONS,
            max_retries=Retry(total=False, redirect=False, raise_on_status=False),
        )
        for scheme in ("http://", "https://"):
            self._session.mount(scheme, adapter)
        # Proxy (HTTP(S)_PROXY, NO_PROXY) and CA bundle read once for the one host it talks to:
        # `trust_env` rescanned the environment and ~/.netrc on every request.
        self._session.trust_env = False
        self._session.proxies = requests.utils.get_environ_proxies(self.endpoint)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._client = AIProjectClient(
            endpoint=self.endpoint,
            credential=credential,
            per_call_policies=policies,
            retry_total=0,
            transport=RequestsTransport(
                session=self._session,
                session_owner=False,
                connection_timeout=min(10.0, timeout),
                read_timeout=timeout,
                connection_verify=ca_bundle or True,
            ),
        )
        self._timeout = timeout
        self._features = features
        self._openai_client: Any = None
        self._openai_lock = threading.Lock()

    @property
    def _openai(self) -> Any:
        """The SDK's OpenAI client, made on first use: plan and apply never need it."""
        with self._openai_lock:
            if self._openai_client is None:
                self._openai_client = self._make_openai_client()
            return self._openai_client

    def _make_openai_client(self) -> Any:
        import openai

        def count_openai_request(request: Any) -> None:
            self._tick()

        features = self._features
        headers: dict[str, Any] = (
            {"default_headers": {FEATURES_HEADER: features}} if features else {}
        )
        return self._client.get_openai_client(
            **headers,
            max_retries=0,
            timeout=self._timeout,
            http_client=openai.DefaultHttpxClient(
                event_hooks={"request": [count_openai_request]}, timeout=self._timeout
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
            raise azure_error(exc, what) from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._azure(what):
            return fn()

    def close(self) -> None:
        with self._openai_lock:
            if self._openai_client is not None:
                self._openai_client.close()
        self._client.close()
        self._session.close()
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
            raise openai_error(exc, "create a conversation") from exc
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
            raise openai_error(exc, f"read conversation {conversation_id!r}") from exc
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
            raise openai_error(exc, f"respond as {agent_name!r}") from exc
