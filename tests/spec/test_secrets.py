"""`${VAR}` references: finding, late resolution, defaults, escapes, masking and redaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.spec.models import Channel, Environment
from runner.spec.secrets import (
    MissingSecretError,
    Reference,
    SecretSyntaxError,
    check_references,
    find_references,
    mask,
    mask_value,
    redact,
    referenced_values,
    resolve,
    resolve_model,
    resolve_value,
)


def webhook() -> Channel:
    return Channel.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Channel",
            "name": "ops",
            "type": "webhook",
            "url": "${OPS_URL:-http://127.0.0.1:9000/hooks}",
            "headers": {"Authorization": "Bearer ${OPS_TOKEN}"},
        }
    )


def prod() -> Environment:
    return Environment.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Environment",
            "name": "prod",
            "provider": "foundry",
            "endpoint": "${FOUNDRY_PROJECT_ENDPOINT}",
            "vars": {"company": "Contoso", "owners": ["${OWNER:-ops}", "x"]},
        }
    )


# ---------------------------------------------------------------- resolve


def test_a_reference_takes_the_variables_value() -> None:
    assert resolve("${A}", {"A": "alpha"}) == "alpha"
    assert resolve("x-${A}-${B}-y", {"A": "1", "B": "2"}) == "x-1-2-y"


def test_a_default_applies_when_unset_or_empty() -> None:
    assert resolve("${A:-fallback}", {}) == "fallback"
    assert resolve("${A:-fallback}", {"A": ""}) == "fallback"
    assert resolve("${A:-fallback}", {"A": "set"}) == "set"
    assert resolve("${A:-}", {}) == ""
    assert resolve("${A:-smtp://localhost:25}", {}) == "smtp://localhost:25"


def test_a_set_but_empty_variable_without_default_is_empty() -> None:
    assert resolve("[${A}]", {"A": ""}) == "[]"


def test_missing_variable_names_it_and_the_resource() -> None:
    with pytest.raises(MissingSecretError) as caught:
        resolve("Bearer ${OPS_TOKEN}", {}, address="channel.ops")
    error = caught.value
    assert error.name == "OPS_TOKEN"
    assert error.address == "channel.ops"
    assert "OPS_TOKEN is not set" in str(error)
    assert "channel.ops" in str(error)
    assert "set it" in str(error)


def test_double_dollar_escapes_a_literal_reference() -> None:
    assert resolve("$${A}", {"A": "secret"}) == "${A}"
    assert resolve("cost: $$${A}", {"A": "5"}) == "cost: $${A}"  # `$` + escape `$${`
    assert resolve("price $5 and ${A}", {"A": "x"}) == "price $5 and x"


def test_values_are_not_expanded_again() -> None:
    assert resolve("${A}", {"A": "${B}", "B": "nope"}) == "${B}"


def test_malformed_reference_is_a_syntax_error() -> None:
    for text in ("${not valid}", "${1ABC}", "${OPEN", "${}"):
        with pytest.raises(SecretSyntaxError):
            resolve(text, {"OPEN": "x"})


@given(st.text().filter(lambda t: "$" not in t))
def test_text_without_dollar_resolves_to_itself(text: str) -> None:
    assert resolve(text, {}) == text


@given(st.text())
def test_any_value_is_substituted_verbatim(value: str) -> None:
    assert resolve("<${V}>", {"V": value}) == f"<{value}>"


# ---------------------------------------------------------------- find / check


def test_find_references_walks_models_with_yaml_paths() -> None:
    refs = find_references(webhook())
    assert refs == [
        Reference(
            name="OPS_URL",
            default="http://127.0.0.1:9000/hooks",
            text="${OPS_URL:-http://127.0.0.1:9000/hooks}",
            path=("url",),
            start=0,
            end=39,
        ),
        Reference(
            name="OPS_TOKEN",
            default=None,
            text="${OPS_TOKEN}",
            path=("headers", "Authorization"),
            start=7,
            end=19,
        ),
    ]


def test_find_references_in_nested_lists_and_skips_escapes() -> None:
    refs = find_references({"a": ["x", {"b": "$${LITERAL} ${REAL}"}]})
    assert [(r.name, r.path) for r in refs] == [("REAL", ("a", 1, "b"))]


def test_aliased_fields_are_found_under_their_yaml_name() -> None:
    channel = Channel.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Channel",
            "name": "mail",
            "type": "email",
            "to": ["${TEAM_MAIL}"],
            "from": "${SENDER:-runner@example.com}",
        }
    )
    assert {(r.name, r.path) for r in find_references(channel)} == {
        ("TEAM_MAIL", ("to", 0)),
        ("SENDER", ("from",)),
    }


def test_check_references_reports_malformed_ones_with_their_path() -> None:
    problems = check_references({"url": "http://${HOST NAME}/x", "ok": "${FINE}"})
    assert [(p.path, p.text) for p in problems] == [(("url",), "${HOST NAME}")]
    assert "malformed reference" in problems[0].message
    assert check_references(webhook()) == []


# ---------------------------------------------------------------- models


def test_resolve_model_returns_a_resolved_copy() -> None:
    channel = webhook()
    resolved = resolve_model(channel, {"OPS_TOKEN": "t0k3n"})
    assert resolved.url == "http://127.0.0.1:9000/hooks"
    assert resolved.headers == {"Authorization": "Bearer t0k3n"}
    assert channel.headers == {"Authorization": "Bearer ${OPS_TOKEN}"}  # untouched
    assert isinstance(resolved, Channel)


def test_resolve_model_names_the_resource_that_needs_the_variable() -> None:
    with pytest.raises(MissingSecretError) as caught:
        resolve_model(prod(), {})
    assert caught.value.name == "FOUNDRY_PROJECT_ENDPOINT"
    assert caught.value.address == "environment.prod"
    with pytest.raises(MissingSecretError) as caught:
        resolve_model(prod(), {}, address="env prod (apply)")
    assert caught.value.address == "env prod (apply)"


def test_resolve_model_resolves_nested_vars_and_keeps_other_values() -> None:
    resolved = resolve_model(prod(), {"FOUNDRY_PROJECT_ENDPOINT": "https://f.example"})
    assert resolved.endpoint == "https://f.example"
    assert resolved.vars == {"company": "Contoso", "owners": ["ops", "x"]}
    assert resolved.name_prefix == "" and resolved.provider == "foundry"


def test_resolve_value_leaves_keys_alone() -> None:
    assert resolve_value({"${K}": "${V}", "n": 3}, {"K": "k", "V": "v"}) == {"${K}": "v", "n": 3}


# ---------------------------------------------------------------- mask / redact


def test_mask_shows_references_as_written_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TOKEN", "super-secret-value")
    text = "Bearer ${OPS_TOKEN} at ${OPS_URL:-http://h}"
    assert mask(text) == text
    assert "super-secret-value" not in mask(text)
    assert mask(mask(text)) == mask(text)
    assert mask_value({"h": [text]}) == {"h": [text]}


def test_redact_scrubs_resolved_values_from_log_lines() -> None:
    line = "POST https://hooks.example/abc?token=s3cr3t failed (token s3cr3t)"
    assert redact(line, ["s3cr3t"]) == "POST https://hooks.example/abc?token=*** failed (token ***)"
    assert redact(line, {"HOOK_TOKEN": "s3cr3t"}) == (
        "POST https://hooks.example/abc?token=${HOOK_TOKEN} failed (token ${HOOK_TOKEN})"
    )


def test_redact_replaces_longer_values_first_and_ignores_empty_ones() -> None:
    assert redact("abcdef and abc", ["abc", "abcdef", ""]) == "*** and ***"
    assert redact("nothing", []) == "nothing"
    assert redact("a.b", ["."]) == "a***b"  # values are literal, not regexes


def test_referenced_values_feed_redact() -> None:
    environ = {"OPS_TOKEN": "t0k3n", "UNRELATED": "zzz", "OPS_URL": ""}
    values = referenced_values(webhook(), environ)
    assert values == {"OPS_TOKEN": "t0k3n"}
    resolved = resolve_model(webhook(), environ)
    assert "t0k3n" not in redact(str(resolved.headers), values)
