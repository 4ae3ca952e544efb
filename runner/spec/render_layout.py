"""The default layout and the views of a personality and its guidelines that texts see.

Role in the flow: `runner.spec.render` composes the final instructions by rendering a layout
(`DEFAULT_LAYOUT`, or `layout` on the Agent or Template) over the rendered pieces.
`render_default_layout` renders `DEFAULT_LAYOUT` without Jinja; `personality_view`/`guideline_view`
are the mappings `personality` and `guidelines` are in every text's variables.

Invariants:
  - `render_default_layout(values)` is byte for byte what Jinja renders for `DEFAULT_LAYOUT`
    with the render environment (`trim_blocks`, `lstrip_blocks`) over the same values (see the
    tests).
  - `traits_text` is a fixed sentence in a fixed trait order: rendering stays deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.models import Guideline, Personality

__all__ = [
    "DEFAULT_LAYOUT",
    "guideline_view",
    "personality_view",
    "render_default_layout",
    "traits_text",
]

DEFAULT_LAYOUT = """\
{{ instructions }}
{% if personality %}

## Personality
{% if personality.traits_text %}
{{ personality.traits_text }}
{% endif %}
{% for modifier in personality.prompt_modifiers %}
- {{ modifier }}
{% endfor %}
{% if personality.response_templates %}

## Response templates
{% for key, text in personality.response_templates.items() %}
- {{ key }}: {{ text }}
{% endfor %}
{% endif %}
{% if personality.prohibited_behaviors %}

## Never
{% for item in personality.prohibited_behaviors %}
- {{ item }}
{% endfor %}
{% endif %}
{% endif %}
{% if guidelines %}

## Guidelines
{% for g in guidelines %}
- When {{ g.condition }}: {{ g.action }}
{% endfor %}
{% endif %}
{% if capabilities %}

## Capabilities
{% for c in capabilities %}
- {{ c }}
{% endfor %}
{% endif %}
"""

# Trait -> label in the human sentence ("Tone: professional; detail: detailed; ...").
_TRAIT_LABELS: tuple[tuple[str, str], ...] = (
    ("formality", "Tone"),
    ("verbosity", "detail"),
    ("helpfulness", "initiative"),
    ("creativity", "creativity"),
    ("empathy", "empathy"),
)


def render_default_layout(context: Mapping[str, Any]) -> str:
    """DEFAULT_LAYOUT rendered without Jinja (the same text, byte for byte; see the tests)."""
    out = [str(context["instructions"]), "\n"]
    personality = context["personality"]
    if personality:
        out.append("\n## Personality\n")
        if personality["traits_text"]:
            out += (str(personality["traits_text"]), "\n")
        for modifier in personality["prompt_modifiers"]:
            out += ("- ", str(modifier), "\n")
        if personality["response_templates"]:
            out.append("\n## Response templates\n")
            for key, text in personality["response_templates"].items():
                out += ("- ", str(key), ": ", str(text), "\n")
        if personality["prohibited_behaviors"]:
            out.append("\n## Never\n")
            for item in personality["prohibited_behaviors"]:
                out += ("- ", str(item), "\n")
    guidelines = context["guidelines"]
    if guidelines:
        out.append("\n## Guidelines\n")
        for g in guidelines:
            out += ("- When ", str(g["condition"]), ": ", str(g["action"]), "\n")
    capabilities = context["capabilities"]
    if capabilities:
        out.append("\n## Capabilities\n")
        for c in capabilities:
            out += ("- ", str(c), "\n")
    return "".join(out)


def traits_text(personality: Personality) -> str:
    """The traits as one human sentence: `Tone: professional; detail: detailed; ...`."""
    parts = [
        f"{label}: {getattr(personality.traits, trait)}"
        for trait, label in _TRAIT_LABELS
        if getattr(personality.traits, trait) is not None
    ]
    return "; ".join(parts) + "." if parts else ""


def personality_view(p: Personality) -> dict[str, Any]:
    """`personality` as every text sees it (its texts as written; the layout sees them rendered)."""
    return {
        "name": p.name,
        "description": p.description,
        "traits": p.traits.model_dump(mode="json", exclude_none=True),
        "traits_text": traits_text(p),
        "prompt_modifiers": list(p.prompt_modifiers),
        "response_templates": dict(p.response_templates),
        "prohibited_behaviors": list(p.prohibited_behaviors),
    }


def guideline_view(g: Guideline) -> dict[str, Any]:
    """One item of `guidelines` as every text sees it."""
    return {"condition": g.condition, "action": g.action, "priority": g.priority}
