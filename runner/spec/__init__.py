"""The specs: YAML files -> typed, checked documents -> each agent rendered (the flow's first step).

`loader.load_project` reads the files into a `project.Project` with a source map; `checks`
finds what no single document can; `render` turns an agent into its Foundry definition for an
environment (what varies per session -- preferences, features, a workspace's vars -- as
structured inputs, `render_split`/`render_session`), each Jinja text in a bounded sandbox
(`render_sandbox`) within its budget (`render_limits`); `preference_values` checks a value
against a declared preference; `patterns` compiles user regexes with RE2 (linear time);
`secrets` resolves `${VAR}` only when asked; `schema` publishes the JSON Schemas.

May import: `runner.errors`, `runner.paths`, `runner.providers.base` (Foundry's rules, metadata
keys and structured-input placeholders), and itself. This package exports nothing itself and
imports nothing eagerly: `runner validate` pays only for what it uses (never the Azure SDK,
jinja2 only when a text needs it, jsonschema only for a preference declared with a schema, re2
only for a pattern).
"""

__all__: list[str] = []
