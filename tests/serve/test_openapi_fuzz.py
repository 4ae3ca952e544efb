"""A property-based run of the OpenAPI document (schemathesis) against the live server, with
an admin key: whatever the generated path, query and body, the server never answers 5xx.

Examples are bounded (a few per operation, derandomized) so the run stays well under a
minute. Operations are driven with hypothesis directly: schemathesis' pytest fixture loader
does not run under this pytest."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from serve_support import KEYS, LiveServer

EXAMPLES = 8


def test_no_generated_request_gets_a_server_error(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {KEYS['ADMIN_KEY']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=live.url, headers=headers, checks=[not_a_server_error]
            )
            seen.append(f"{case.method} {case.path} {response.status_code}")

        run()
    assert len(seen) >= len(operations)
