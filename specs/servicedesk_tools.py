"""The service desk's function tools: what the runtime runs when access-agent's model calls
`lookup_account` or `unlock_account` (`implementation:` in agents.yaml, imported from this
folder). Offline (the local provider), a message naming `@lookup_account{"employee_id": "E1"}`
makes the model call it; see the README's "Function tools"."""

from __future__ import annotations

_LOCKED = frozenset({"E12345", "E20001"})  # stateless: scenarios stay repeatable


def lookup_account(employee_id: str) -> dict[str, object]:
    """Account status of an employee (a directory lookup in a real deployment)."""
    if employee_id == "E00000":
        raise LookupError(f"no employee {employee_id} in the directory")
    return {
        "employee_id": employee_id,
        "locked": employee_id in _LOCKED,
        "mfa": ["authenticator"],
    }


async def unlock_account(employee_id: str) -> str:
    """Unlock an employee's account (async: a real one would call the directory's API)."""
    return f"account {employee_id} unlocked"
