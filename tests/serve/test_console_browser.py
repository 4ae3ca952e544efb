"""The operator console in headless Chromium (Debian's `chromium` through Playwright with
`executable_path`; never a downloaded browser): sign in with a key, approve a pending
escalation, claim the session, answer the user — live over Socket.io, checked over REST.

Without /usr/bin/chromium the test is skipped with the reason, unless
RUNNER_REQUIRE_BROWSER=1, when it fails (the `chromium` fixture, tests/conftest.py).
"""

from __future__ import annotations

from serve_support import KEYS, LiveServer, new_session, send


def test_an_operator_approves_claims_and_answers_in_the_console(
    live: LiveServer, chromium: tuple[str, list[str]]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    session = new_session(live)
    sid = session["id"]
    for _ in range(11):
        send(live, sid, "I still have a question about my request")
    with sync_playwright() as p:
        executable, flags = chromium
        browser = p.chromium.launch(executable_path=executable, args=flags, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live.url + "/console")
            page.get_by_label("API key or token").fill(KEYS["OPS_KEY"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#connection")).to_have_text("Live", timeout=10_000)

            row = page.locator(f'#escalations tr[data-session="{sid}"]')
            expect(row).to_contain_text("pending_approval")
            row.get_by_role("button", name=f"Approve {sid}").click()
            expect(page.locator("#status")).to_contain_text("approved")

            queued = page.locator(f'#queue tr[data-session="{sid}"]')
            expect(queued).to_be_visible(timeout=10_000)
            queued.get_by_role("button", name=f"Claim {sid}").click()
            expect(queued).to_contain_text("dana")

            send(live, sid, "Hello, is a person there?")
            expect(page.locator("#transcript")).to_contain_text(
                "Hello, is a person there?", timeout=10_000
            )
            page.get_by_label("Answer the user").fill("Yes, Dana here. Let me look.")
            page.get_by_role("button", name="Send answer").click()
            expect(page.locator("#transcript")).to_contain_text("Dana here")
            assert errors == []
        finally:
            browser.close()

    with live.client("OPS_KEY") as ops:
        entries = ops.get(f"/sessions/{sid}/transcript").json()["entries"]
        assert ("operator", "dana", "Yes, Dana here. Let me look.") in [
            (e["role"], e["author"], e["text"]) for e in entries
        ]
        item = next(i for i in ops.get("/human-queue").json()["items"] if i["session_id"] == sid)
        assert item["claimed_by"] == "dana"
