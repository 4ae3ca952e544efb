"""The local store keeps Foundry's agent semantics, on a real SQLite file per test."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from pathlib import Path

import pytest

from runner.providers.base import NotFoundError, Provider, ProviderError, TransientError
from runner.providers.local import LocalProvider
from runner.providers.local_replies import compute_reply
from runner.providers.local_store import LocalStore

DEFINITION = {"kind": "prompt", "model": "gpt-4o", "instructions": "be brief"}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    with LocalStore(tmp_path / "store.db") as s:
        yield s


def test_versions_are_numbered_per_name_and_immutable(store: LocalStore) -> None:
    v1 = store.create_version("tech-agent-1", definition=DEFINITION, metadata={"a": "1"})
    v2 = store.create_version(
        "tech-agent-1", definition={**DEFINITION, "instructions": "x"}, metadata={"a": "2"}
    )
    other = store.create_version("billing", definition=DEFINITION)

    assert (v1.version, v2.version, other.version) == ("1", "2", "1")
    assert store.get_version("tech-agent-1", "1") == v1
    assert store.get_version("tech-agent-1", "1").definition["instructions"] == "be brief"
    assert store.latest_version("tech-agent-1") == v2
    assert [v.version for v in store.list_versions("tech-agent-1").items] == ["1", "2"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.version = "9"  # type: ignore[misc]


def test_definition_key_order_and_metadata_round_trip(store: LocalStore) -> None:
    definition = {"model": "m", "instructions": "i", "tools": [{"type": "code_interpreter"}]}
    created = store.create_version("a", definition=definition, metadata={"k": "v"}, description="d")
    loaded = store.get_version("a", created.version)
    assert loaded is not None
    assert list(loaded.definition) == ["model", "instructions", "tools"]
    assert loaded.metadata == {"k": "v"}
    assert loaded.description == "d"
    assert loaded.created_at > 0


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({f"k{i}": "v" for i in range(17)}, "17 pairs"),
        ({"k" * 65: "v"}, "65 characters"),
        ({"k": "v" * 513}, "513 characters"),
        ({"k": 1}, "must be strings"),
    ],
)
def test_metadata_beyond_foundry_limits_is_refused_like_a_400(
    store: LocalStore, metadata: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ProviderError) as info:
        store.create_version("a", definition=DEFINITION, metadata=metadata)  # type: ignore[arg-type]
    assert (info.value.code, info.value.status) == ("invalid_parameters", 400)
    assert fragment in str(info.value)
    assert store.latest_version("a") is None


def test_metadata_at_the_limits_is_accepted(store: LocalStore) -> None:
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    version = store.create_version("a", definition=DEFINITION, metadata=metadata)
    assert dict(version.metadata) == metadata


def test_long_description_is_refused(store: LocalStore) -> None:
    store.create_version("a", definition=DEFINITION, description="d" * 512)
    with pytest.raises(ProviderError, match="description") as info:
        store.create_version("a", definition=DEFINITION, description="d" * 513)
    assert info.value.code == "invalid_parameters"


@pytest.mark.parametrize("name", ["a", "A1", "tech-agent-1", "x" * 63, "a--b"])
def test_valid_agent_names(store: LocalStore, name: str) -> None:
    assert store.create_version(name, definition=DEFINITION).name == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "a.b", "a b", "x" * 64, "é"])
def test_invalid_agent_names_are_400_invalid_parameters(store: LocalStore, name: str) -> None:
    with pytest.raises(ProviderError, match="must start and end with alphanumeric") as info:
        store.create_version(name, definition=DEFINITION)
    assert (info.value.code, info.value.status) == ("invalid_parameters", 400)


def test_delete_version_keeps_the_others_and_numbers_are_never_reused(store: LocalStore) -> None:
    for _ in range(3):
        store.create_version("a", definition=DEFINITION)
    store.delete_version("a", "3")
    assert store.latest_version("a").version == "2"  # type: ignore[union-attr]
    store.delete_version("a", "1")
    assert [v.version for v in store.list_versions("a").items] == ["2"]
    assert store.create_version("a", definition=DEFINITION).version == "4"
    with pytest.raises(NotFoundError):
        store.delete_version("a", "1")
    with pytest.raises(NotFoundError):
        store.delete_version("a", "not-a-number")


def test_deleting_the_last_version_deletes_the_agent(store: LocalStore) -> None:
    store.create_version("a", definition=DEFINITION)
    store.delete_version("a", "1")
    assert store.latest_version("a") is None
    assert store.list_latest().items == []
    with pytest.raises(NotFoundError):
        store.list_versions("a")


def test_delete_agent_removes_every_version_but_not_the_counter(store: LocalStore) -> None:
    store.create_version("a", definition=DEFINITION)
    store.create_version("a", definition=DEFINITION)
    store.create_version("b", definition=DEFINITION)
    store.delete_agent("a")
    assert store.get_version("a", "1") is None
    assert [v.name for v in store.list_latest().items] == ["b"]
    with pytest.raises(NotFoundError):
        store.delete_agent("a")
    assert store.create_version("a", definition=DEFINITION).version == "3"
    # recreated agents move to the end of the creation order
    assert [v.name for v in store.list_latest().items] == ["b", "a"]


def test_list_latest_pages_by_creation_order(store: LocalStore) -> None:
    for i in range(5):
        store.create_version(f"agent-{i}", definition=DEFINITION)
    store.create_version("agent-0", definition=DEFINITION)
    first = store.list_latest(limit=2)
    assert [v.name for v in first.items] == ["agent-0", "agent-1"]
    assert first.items[0].version == "2"
    assert first.has_more
    rest = store.list_latest(limit=2, after="agent-3")
    assert ([v.name for v in rest.items], rest.has_more) == (["agent-4"], False)
    desc = store.list_latest(order="desc", limit=2, after="agent-3")
    assert [v.name for v in desc.items] == ["agent-2", "agent-1"]
    assert [v.name for v in store.list_latest(before="agent-2").items] == ["agent-0", "agent-1"]
    assert store.list_latest(kind="hosted").items == []


def test_concurrent_create_version_from_threads_never_reuses_a_number(store: LocalStore) -> None:
    numbers: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            version = store.create_version("shared", definition=DEFINITION).version
            with lock:
                numbers.append(version)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers, key=int) == [str(i) for i in range(1, 201)]


def _create_versions_in_process(path: str, count: int) -> list[str]:
    with LocalStore(path) as s:
        return [s.create_version("shared", definition=DEFINITION).version for _ in range(count)]


def test_concurrent_create_version_from_processes_never_reuses_a_number(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    LocalStore(path).close()  # schema exists before the race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_versions_in_process, [(path, 30)] * 4)
    numbers = [n for chunk in results for n in chunk]
    assert sorted(numbers, key=int) == [str(i) for i in range(1, 121)]
    with LocalStore(path) as s:
        assert s.latest_version("shared").version == "120"  # type: ignore[union-attr]


def test_everything_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store.db"
    with LocalStore(path) as s:
        s.create_version("a", definition=DEFINITION, metadata={"k": "v"})
        s.create_version("a", definition=DEFINITION)
        s.delete_version("a", "2")
        conversation = s.create_conversation(metadata={"user": "u1"})
        reply = s.respond(
            conversation_id=conversation.id, agent_name="a", agent_version=None, text="hi there"
        )
    with LocalStore(path) as s:
        assert s.latest_version("a").metadata == {"k": "v"}  # type: ignore[union-attr]
        assert s.create_version("a", definition=DEFINITION).version == "3"
        assert s.get_conversation(conversation.id).metadata == {"user": "u1"}  # type: ignore[union-attr]
        items = s.list_items(conversation.id).items
        assert [(i.role, i.content) for i in items] == [
            ("user", "hi there"),
            ("assistant", reply.text),
        ]
        assert s.get_response(reply.id) == reply


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = LocalStore(tmp_path / "store.db")
    s.close()
    with pytest.raises(ProviderError, match="closed"):
        s.latest_version("a")


def test_replies_are_deterministic_and_name_agent_and_version(store: LocalStore) -> None:
    store.create_version("tech-agent-1", definition=DEFINITION)
    store.create_version("tech-agent-1", definition=DEFINITION)
    one = store.create_conversation()
    two = store.create_conversation()
    a = store.respond(
        conversation_id=one.id,
        agent_name="tech-agent-1",
        agent_version=None,
        text="my printer is on fire",
    )
    b = store.respond(
        conversation_id=two.id,
        agent_name="tech-agent-1",
        agent_version="2",
        text="my printer is on fire",
    )
    old = store.respond(
        conversation_id=two.id, agent_name="tech-agent-1", agent_version="1", text="hello"
    )
    assert a.text == b.text == "[tech-agent-1 v2] my printer is on fire"
    assert old.text.startswith("[tech-agent-1 v1] ")
    long_text = " ".join(f"w{i}" for i in range(30))
    assert compute_reply("x", "1", long_text).endswith("w11 ...")
    assert compute_reply("x", "1", "   ") == "[x v1] (empty message)"


def test_token_usage_is_estimated_from_words(store: LocalStore) -> None:
    store.create_version("a", definition=DEFINITION)
    conversation = store.create_conversation(items=[("user", "seed words here")])
    first = store.respond(
        conversation_id=conversation.id, agent_name="a", agent_version=None, text="one two"
    )
    assert first.input_tokens == 3 + 2
    assert first.output_tokens == len(first.text.split())
    second = store.respond(
        conversation_id=conversation.id, agent_name="a", agent_version=None, text="three"
    )
    assert second.input_tokens == first.input_tokens + first.output_tokens + 1
    store.add_items(conversation.id, [("user", "four five")])
    third = store.respond(
        conversation_id=conversation.id, agent_name="a", agent_version=None, text="six"
    )
    assert third.input_tokens == second.input_tokens + second.output_tokens + 2 + 1
    alone = store.respond(conversation_id=None, agent_name="a", agent_version=None, text="a b c")
    assert (alone.input_tokens, alone.conversation_id) == (3, None)
    assert store.get_response(alone.id) == alone


def test_respond_to_unknown_things_writes_nothing(store: LocalStore) -> None:
    store.create_version("a", definition=DEFINITION)
    conversation = store.create_conversation()
    for kwargs in (
        {"agent_name": "missing", "agent_version": None},
        {"agent_name": "a", "agent_version": "7"},
        {"agent_name": "a", "agent_version": "latest"},
    ):
        with pytest.raises(NotFoundError):
            store.respond(conversation_id=conversation.id, text="hi", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.respond(conversation_id="conv_missing", agent_name="a", agent_version=None, text="hi")
    assert store.list_items(conversation.id).items == []


def test_conversation_items_page_and_delete(store: LocalStore) -> None:
    conversation = store.create_conversation()
    made = store.add_items(conversation.id, [("user", f"m{i}") for i in range(5)])
    page = store.list_items(conversation.id, limit=2, after=made[1].id)
    assert ([i.content for i in page.items], page.has_more) == (["m2", "m3"], True)
    assert [i.content for i in store.list_items(conversation.id, order="desc", limit=1).items] == [
        "m4"
    ]
    store.delete_conversation(conversation.id)
    assert store.get_conversation(conversation.id) is None
    with pytest.raises(NotFoundError):
        store.list_items(conversation.id)
    with pytest.raises(NotFoundError):
        store.add_items(conversation.id, [("user", "late")])


def test_local_provider_implements_the_protocol(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    try:
        assert isinstance(provider, Provider)
        assert (provider.name, provider.remote) == ("local", False)
        created = provider.create_version(
            "a", definition=DEFINITION, metadata={"managed-by": "runner"}
        )
        assert created.managed
        assert provider.get_agent("a") == created
        assert provider.get_agent("nope") is None
        assert provider.list_versions("nope") == []
        assert provider.list_agents() == [created]
        conversation = provider.create_conversation(metadata={"u": "1"})
        reply = provider.respond(
            conversation_id=conversation, agent_name="a", agent_version=None, text="ping"
        )
        assert reply.text == "[a v1] ping"
        assert reply.total_tokens == 1 + 3
        provider.delete_version("a", "1")
        with pytest.raises(NotFoundError):
            provider.delete_agent("a")
        assert provider.request_count() == 9
    finally:
        provider.close()


def test_a_writer_blocked_beyond_busy_timeout_gets_a_transient_error(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    with LocalStore(path, busy_timeout_ms=50) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(TransientError) as info:
                s.create_version("a", definition=DEFINITION)
            assert info.value.code == "busy"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.create_version("a", definition=DEFINITION).version == "1"
