"""Team routing: which handoff trigger fires on a user message, and which member takes it.

Role: the pure matching half of "teams at run time". The team router
(`runner.runtime.teams`) compiles each member's triggers once per team revision
(`MatcherCache`) and calls `decide_handoff` on every user message; the escalation engine
(`runner.runtime.escalation`) reuses the matcher for its levels' keywords and patterns.
Nothing here does I/O, reads a clock or keeps state between calls.

May import: `runner.spec` (models, vocabulary) and the standard library; nothing else of the
runtime (it is the runtime's lowest package after its neutral modules).

Modules, bottom up: `text` (case folding, detector units and regexes, the tokenizer),
`prefilter` (pattern literal and token prefilters), `compiled` (a member's triggers compiled
into lookup tables), `matcher` (`TriggerMatcher`: `best` and `match`; `MatcherCache`),
`decision` (`decide_handoff`, `select_member`).

Trigger semantics (`HandoffTrigger.when`):
  - `keywords`: whole words, case-insensitive. A keyword matches where it is neither preceded
    nor followed by a word character (letter, digit, underscore): "Error" matches `error`,
    "terror" and "errors" do not; "error-prone" does. A multi-word keyword is a phrase whose
    words may be separated by any run of whitespace ("stack  trace" matches `stack trace`).
  - `requested`: phrases matched case-insensitively at word boundaries; the phrase's words may
    be separated by any run of non-word characters (whitespace and punctuation), and
    punctuation at its ends is ignored: `talk to a human` matches "I want to TALK TO A  human!"
    and "talk to... a human".
  - `pattern`: a regular expression in RE2 syntax (`runner.spec.patterns`), searched anywhere
    in the original text in time linear in its length, with the flags it carries:
    case-sensitive unless it says so itself (`(?i)...`); `\\w`, `\\b`, `\\d` are ASCII.
  - `turns_above: N`: holds when `turn` (user messages so far, this one included) is > N.
  - Several keys in one `when` are alternative detectors: the trigger holds when ANY holds (a
    list of detectors, like the lists inside each key).
  - Case-insensitive means equal after Unicode lowercasing character by character (`str.lower`;
    the one character whose lowercase is longer, U+0130, is compared as itself).
  - Inactive triggers (`active: false`) never match.
  - Ordering: by `priority` ascending (1 beats 2), ties by declaration order.
"""

from runner.runtime.routing.compiled import DetectorKind
from runner.runtime.routing.decision import (
    HandoffAction,
    HandoffDecision,
    decide_handoff,
    select_member,
)
from runner.runtime.routing.matcher import (
    MatcherCache,
    TriggerMatch,
    TriggerMatcher,
    compile_team,
    compile_triggers,
)
from runner.runtime.routing.text import fold_case, keyword_regex, requested_regex

__all__ = [
    "DetectorKind",
    "HandoffAction",
    "HandoffDecision",
    "MatcherCache",
    "TriggerMatch",
    "TriggerMatcher",
    "compile_team",
    "compile_triggers",
    "decide_handoff",
    "fold_case",
    "keyword_regex",
    "requested_regex",
    "select_member",
]
