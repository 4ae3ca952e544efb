"""Foundry's tool wire shapes: what each tool type runner knows must carry, checked offline.

Role in the flow: `foundry.check_foundry_rules` calls `tool_problems` for every tool of every
Template and Agent; each problem is a (path inside the tool, message) pair that the check reports
at the position of that value (or of the nearest enclosing value that was written).

The shapes are the service's (azure-ai-projects 2.x models, shared/reference/foundry-protocol.md
section 4, and the create_version bodies in tests/providers/recordings/builtin_tools.json):
  function        `name` (1-64 of letters, digits, `_`, `-`), `parameters` (a JSON Schema
                  object), `strict` (a boolean); with `strict: true` every object schema must set
                  `additionalProperties: false` and list all its properties in `required`, as
                  strict function calling demands
  file_search     `vector_store_ids`: a non-empty list of ids; `max_num_results` 1-50
  bing_grounding  `bing_grounding.search_configurations`: one entry with a
                  `project_connection_id`
  azure_ai_search `azure_ai_search.indexes`: one entry with `index_asset_id`, or with
                  `project_connection_id` and `index_name`
  mcp             `server_label`, and one of `server_url`, `connector_id`, `tunnel_id`,
                  `project_connection_id`
  openapi         `openapi.name`, `openapi.spec` (an object), `openapi.auth.type`
                  (`anonymous`, `project_connection` with
                  `security_scheme.project_connection_id`, `managed_identity` with
                  `security_scheme.audience`)
  web_search(_preview)  optional `search_context_size` low/medium/high, `user_location` with
                  `type: approximate`
  code_interpreter      optional `container`: an id or `{type: auto, ...}`
Other types pass through unchecked (Foundry has dozens; the service has the last word).

Invariant: pure; reads plain values (a tool's keys as written), never the service.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from runner.spec.models import TOOL_REQUIRED_KEYS

__all__ = ["ToolProblem", "tool_problems"]

ToolProblem = tuple[tuple[str | int, ...], str, str]
"""(path inside the tool, problem code, message)."""

FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MCP_TARGETS = ("server_url", "connector_id", "tunnel_id", "project_connection_id")
OPENAPI_AUTH = ("anonymous", "project_connection", "managed_identity")


def _quoted(keys: tuple[str, ...] | list[str]) -> str:
    return " and ".join(repr(k) for k in keys)


def tool_problems(tool_type: str, keys: Mapping[str, Any]) -> list[ToolProblem]:
    """Every way `keys` (a tool's keys other than `type`) break the wire shape of `tool_type`:
    `tool.required` for a missing key, `tool.shape` for a value of the wrong shape."""
    required = TOOL_REQUIRED_KEYS.get(tool_type, ())
    missing = [k for k in required if k not in keys]
    problems: list[ToolProblem] = []
    if missing:
        hint = _HINTS.get(tool_type, "")
        problems.append(((), "tool.required", f"a {tool_type} tool needs {_quoted(missing)}{hint}"))
    check = _CHECKS.get(tool_type)
    if check is not None:
        problems.extend((where, "tool.shape", message) for where, message in check(keys))
    return problems


_HINTS = {
    "function": " (Foundry's function tool: name, parameters as a JSON Schema object, "
    "strict: true or false)",
    "bing_grounding": " ({bing_grounding: {search_configurations: "
    "[{project_connection_id: ...}]}})",
    "azure_ai_search": " ({azure_ai_search: {indexes: [{project_connection_id: ..., "
    "index_name: ...}]}})",
    "openapi": " ({openapi: {name: ..., spec: {...}, auth: {type: anonymous}}})",
}


# ---------------------------------------------------------------- per type


_Found = tuple[tuple[str | int, ...], str]


def _function(keys: Mapping[str, Any]) -> Iterator[_Found]:
    name = keys.get("name")
    if "name" in keys and not (isinstance(name, str) and FUNCTION_NAME_RE.fullmatch(name)):
        yield (
            ("name",),
            (
                f"function name {name!r} must be 1-64 letters, digits, '_' or '-' "
                "(the name the model calls it by)"
            ),
        )
    if "strict" in keys and not isinstance(keys["strict"], bool):
        yield ("strict",), f"'strict' must be true or false, not {keys['strict']!r}"
    if "parameters" not in keys:
        return
    parameters = keys["parameters"]
    if not isinstance(parameters, Mapping):
        yield ("parameters",), "'parameters' must be a JSON Schema object (type: object, ...)"
        return
    if parameters.get("type") != "object":
        yield ("parameters",), "'parameters' must be a schema of `type: object` (the arguments)"
    schema_error = _schema_error(parameters)
    if schema_error is not None:
        yield (
            ("parameters", *schema_error[0]),
            f"'parameters' is not a valid JSON Schema: {schema_error[1]}",
        )
        return
    if keys.get("strict") is True:
        yield from _strict_problems(parameters, ("parameters",))


def _schema_error(schema: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """The first way `schema` breaks the JSON Schema meta-schema, or None (memoised by content:
    agents usually share their tools' parameters)."""
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):  # not JSON (YAML dates, ...): the meta-schema says why
        return _meta_error(schema)
    return _cached_meta_error(text)


@functools.lru_cache(maxsize=4096)
def _cached_meta_error(text: str) -> tuple[tuple[str | int, ...], str] | None:
    return _meta_error(json.loads(text))


def _meta_error(schema: Any) -> tuple[tuple[str | int, ...], str] | None:
    from jsonschema.exceptions import best_match

    validator = _meta_validator()
    if validator.is_valid(schema):
        return None
    error = best_match(validator.iter_errors(schema))
    return None if error is None else (tuple(error.absolute_path), error.message)


@functools.cache
def _meta_validator() -> Any:
    """Draft 7's meta-schema: the dialect function parameters are written in (and 7x cheaper to
    check against than 2020-12's)."""
    from jsonschema import Draft7Validator

    return Draft7Validator(Draft7Validator.META_SCHEMA)


def _strict_problems(schema: Any, path: tuple[str | int, ...]) -> Iterator[_Found]:
    """Strict function calling: every object closes its properties and requires all of them."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _strict_problems(item, (*path, index))
        return
    if not isinstance(schema, Mapping):
        return
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, Mapping):
        if schema.get("additionalProperties") is not False:
            yield (
                path,
                (
                    "with strict: true every object schema needs `additionalProperties: false` "
                    "(or set strict: false)"
                ),
            )
        if isinstance(properties, Mapping):
            required = schema.get("required") or []
            absent = [p for p in properties if p not in required]
            if absent:
                yield (
                    path,
                    (
                        f"with strict: true every property must be in `required` (missing: "
                        f"{', '.join(map(str, absent))}); make optional ones nullable "
                        "(type: [string, 'null']) or set strict: false"
                    ),
                )
    for key in ("properties", "$defs", "definitions"):
        children = schema.get(key)
        if isinstance(children, Mapping):
            for name, child in children.items():
                yield from _strict_problems(child, (*path, key, name))
    for key in ("items", "anyOf", "allOf", "oneOf"):
        if key in schema:
            yield from _strict_problems(schema[key], (*path, key))


def _file_search(keys: Mapping[str, Any]) -> Iterator[_Found]:
    ids = keys.get("vector_store_ids")
    if "vector_store_ids" in keys and not (
        isinstance(ids, list) and ids and all(isinstance(i, str) and i for i in ids)
    ):
        yield (
            ("vector_store_ids",),
            "'vector_store_ids' must be a non-empty list of vector store ids",
        )
    top = keys.get("max_num_results")
    if "max_num_results" in keys and not (
        isinstance(top, int) and not isinstance(top, bool) and 1 <= top <= 50
    ):
        yield ("max_num_results",), f"'max_num_results' must be 1-50, not {top!r}"


def _one_entry(
    keys: Mapping[str, Any], outer: str, inner: str
) -> tuple[list[_Found], Mapping[str, Any] | None]:
    """`keys[outer][inner]` as a list of exactly one mapping: (problems, that mapping)."""
    block = keys.get(outer)
    if outer not in keys:
        return [], None
    if not isinstance(block, Mapping):
        return [((outer,), f"'{outer}' must be a mapping with '{inner}'")], None
    entries = block.get(inner)
    if inner not in block:
        return [((outer,), f"'{outer}' needs '{inner}' (a list of one entry)")], None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], Mapping):
        return [((outer, inner), f"'{outer}.{inner}' must be a list of exactly one mapping")], None
    return [], entries[0]


def _bing_grounding(keys: Mapping[str, Any]) -> Iterator[_Found]:
    problems, entry = _one_entry(keys, "bing_grounding", "search_configurations")
    yield from problems
    if entry is not None and not _text(entry.get("project_connection_id")):
        yield (
            ("bing_grounding", "search_configurations", 0),
            (
                "a bing_grounding search configuration needs 'project_connection_id' "
                "(the id of the project's Grounding with Bing Search connection)"
            ),
        )


def _azure_ai_search(keys: Mapping[str, Any]) -> Iterator[_Found]:
    problems, entry = _one_entry(keys, "azure_ai_search", "indexes")
    yield from problems
    if entry is None or _text(entry.get("index_asset_id")):
        return
    missing = [k for k in ("project_connection_id", "index_name") if not _text(entry.get(k))]
    if missing:
        yield (
            ("azure_ai_search", "indexes", 0),
            (f"an azure_ai_search index needs {_quoted(missing)} (or 'index_asset_id')"),
        )


def _mcp(keys: Mapping[str, Any]) -> Iterator[_Found]:
    if "server_label" in keys and not _text(keys["server_label"]):
        yield ("server_label",), "'server_label' must be a non-empty string"
    if not any(_text(keys.get(k)) for k in MCP_TARGETS):
        yield (), "an mcp tool needs one of " + ", ".join(repr(k) for k in MCP_TARGETS)
    approval = keys.get("require_approval")
    if isinstance(approval, str) and approval not in ("always", "never"):
        yield (
            ("require_approval",),
            (f"'require_approval' must be 'always', 'never' or a mapping, not {approval!r}"),
        )


def _openapi(keys: Mapping[str, Any]) -> Iterator[_Found]:
    block = keys.get("openapi")
    if "openapi" not in keys:
        return
    if not isinstance(block, Mapping):
        yield ("openapi",), "'openapi' must be a mapping with 'name', 'spec' and 'auth'"
        return
    missing = [k for k in ("name", "spec", "auth") if k not in block]
    if missing:
        yield ("openapi",), f"an openapi tool's 'openapi' needs {_quoted(missing)}"
    if "name" in block and not (
        isinstance(block["name"], str) and FUNCTION_NAME_RE.fullmatch(block["name"])
    ):
        yield ("openapi", "name"), "'openapi.name' must be 1-64 letters, digits, '_' or '-'"
    if "spec" in block and not isinstance(block["spec"], Mapping):
        yield ("openapi", "spec"), "'openapi.spec' must be the OpenAPI document (a mapping)"
    auth = block.get("auth")
    if "auth" not in block:
        return
    if not isinstance(auth, Mapping) or auth.get("type") not in OPENAPI_AUTH:
        yield ("openapi", "auth"), ("'openapi.auth' needs 'type': " + ", ".join(OPENAPI_AUTH))
        return
    scheme = auth.get("security_scheme")
    needed = {"project_connection": "project_connection_id", "managed_identity": "audience"}
    key = needed.get(str(auth["type"]))
    if key is not None and not (isinstance(scheme, Mapping) and _text(scheme.get(key))):
        yield (
            ("openapi", "auth"),
            (f"openapi auth of type {auth['type']} needs 'security_scheme.{key}'"),
        )


def _web_search(keys: Mapping[str, Any]) -> Iterator[_Found]:
    size = keys.get("search_context_size")
    if "search_context_size" in keys and size not in ("low", "medium", "high"):
        yield (
            ("search_context_size",),
            (f"'search_context_size' must be low, medium or high, not {size!r}"),
        )
    location = keys.get("user_location")
    if "user_location" in keys and not (
        isinstance(location, Mapping) and location.get("type") == "approximate"
    ):
        yield (
            ("user_location",),
            ("'user_location' must be a mapping with type: approximate (and country, city, ...)"),
        )


def _code_interpreter(keys: Mapping[str, Any]) -> Iterator[_Found]:
    container = keys.get("container")
    if "container" not in keys or _text(container):
        return
    if not (isinstance(container, Mapping) and container.get("type") == "auto"):
        yield (
            ("container",),
            ("'container' must be a container id or a mapping with type: auto (and file_ids)"),
        )


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


_CHECKS: dict[str, Callable[[Mapping[str, Any]], Iterator[_Found]]] = {
    "function": _function,
    "file_search": _file_search,
    "bing_grounding": _bing_grounding,
    "azure_ai_search": _azure_ai_search,
    "mcp": _mcp,
    "openapi": _openapi,
    "web_search": _web_search,
    "web_search_preview": _web_search,
    "code_interpreter": _code_interpreter,
}
