"""Walking a runbook in the browser as staff do: sign in, open pages, press what they show,
type into what they show, and keep a screenshot of every step.

Nothing here posts a form by hand or fills a hidden input: a step the page does not offer
cannot be walked, which is what these tests are for.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import User
from playwright.sync_api import Locator, Page, expect

from tests.opsconsole.factories import PASSWORD, UserFactory

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "runbooks"

OPERATOR = "opal"
VIEWER = "vera"


def staff(username: str, group: str) -> User:
    """A member of one of the console's support groups who may sign in to the admin."""
    return UserFactory(username=username, groups=[group], is_staff=True)


def support_staff() -> tuple[User, User]:
    """The runbook's two readers: a Support operator who acts, a Support viewer who reads."""
    return staff(OPERATOR, "Support operator"), staff(VIEWER, "Support viewer")


class Walk:
    """One runbook walked in one browser page, its screenshots numbered in step order under
    var/screenshots/runbooks/<runbook>/."""

    def __init__(self, page: Page, base_url: str, runbook: str) -> None:
        self.page = page
        self.base_url = base_url
        self.folder = SCREENSHOTS / runbook
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        self.steps = 0

    def shot(self, step: str) -> None:
        self.steps += 1
        self.page.screenshot(path=str(self.folder / f"{self.steps:02d}-{step}.png"), full_page=True)

    def log_in(self, username: str) -> None:
        """Sign in as `username` (anyone signed in before is signed out: cookies cleared)."""
        self.page.context.clear_cookies()
        self.open("/admin/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page).to_have_url(f"{self.base_url}/admin/")

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def link(self, text: str, within: Locator | None = None) -> None:
        (within or self.page).get_by_role("link", name=text, exact=True).first.click()

    def tool(self, action: str) -> None:
        """Press the record page's button for `action` (ObjectPageActions)."""
        self.page.get_by_test_id(f"object-tool-{action}").click()

    def confirm(self, reason: str) -> str:
        """Give the confirmation page its reason, press its Yes button, and return the
        message the console answers with."""
        form = self.page.locator("form#confirm-with-reason")
        form.get_by_label("Reason (recorded in the audit log):").fill(reason)
        form.locator("input[type=submit]").click()
        return self.message()

    def message(self) -> str:
        messages = self.page.locator("ul.messagelist")
        expect(messages).to_be_visible()
        return messages.inner_text()

    def sees_no_action(self) -> None:
        """A viewer's page offers no button that acts (the audit trail link only reads)."""
        expect(self.page.locator("[data-testid^=object-tool-]")).to_have_count(0)
        expect(self.page.locator("form#confirm-with-reason")).to_have_count(0)
        expect(self.page.locator("select[name=action]")).to_have_count(0)
        expect(self.page.locator("input[type=submit][name=_save]")).to_have_count(0)
        expect(self.page.get_by_test_id("bulk-replay-form")).to_have_count(0)
        # Buttons that open an action's page read "…" (Edit the payload and replay…).
        expect(self.page.locator("#content a.button", has_text="…")).to_have_count(0)

    def is_refused(self, path: str) -> None:
        """Opening an action's address shows the console's own refused page."""
        self.open(path)
        expect(self.page.get_by_test_id("refused-page")).to_be_visible()
        # With the console's header, so the viewer goes on from there.
        expect(self.page.get_by_role("link", name="Customer cases")).to_be_visible()
        expect(self.page.get_by_role("button", name="Log out")).to_be_visible()


def viewer_reads_but_acts_on_nothing(
    walk: Walk, *, reads: list[str], refused: list[str], shot: str = "viewer"
) -> None:
    """The runbook's pages as a Support viewer: each reads, none offers an action, and each
    action's address is refused with the console's refused page."""
    walk.log_in(VIEWER)
    for path in reads:
        walk.open(path)
        expect(walk.page.get_by_test_id("refused-page")).to_have_count(0)
        walk.sees_no_action()
    walk.shot(f"{shot}-reads")
    for path in refused:
        walk.is_refused(path)
    walk.shot(f"{shot}-refused")
