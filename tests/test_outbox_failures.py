"""The outbox when Jira fails: what is kept and retried, what is dropped, what is logged."""

from __future__ import annotations

from buildbot_jira.jira.client import Rejection, SubmitResult
from buildbot_jira.jira.errors import (
    JiraAuthError,
    JiraPermissionError,
    JiraRequestError,
    JiraSiteError,
)
from tests.outboxes import (
    KEY,
    UNAVAILABLE,
    FirstWriteFails,
    OutboxTestCase,
    unavailable,
    update,
)
from tests.support import captured_log


class FailureTests(OutboxTestCase):
    def test_unavailable_jira_keeps_updates_and_retries_with_backoff(self) -> None:
        outbox = self.make()
        self.jira.fail_next(unavailable(), unavailable(), unavailable())
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})
        self.assertEqual([s.time for s in self.jira.submissions], [0, 5, 15, 35])
        # Logged once when the outage starts, not once per retry.
        held = [line for line in lines if line.startswith("jira: ") and "held and retried" in line]
        self.assertEqual(len(held), 1, held)
        self.assertIn("held and retried in 5 s", held[0])
        self.assertFalse(any("retried in 20 s" in line for line in lines))
        self.assertTrue(
            any("delivered 1 updates held during 35 s of Jira errors" in line for line in lines)
        )

    def test_the_backoff_stops_growing_at_its_maximum_and_resets_on_success(self) -> None:
        outbox = self.make()
        outbox.configure(initial_backoff=5, max_backoff=12, grace=10)
        self.jira.fail_next(*(unavailable() for _ in range(4)))
        outbox.put(update(1, 100))
        self.drain(outbox)
        self.assertEqual([s.time for s in self.jira.submissions], [0, 5, 15, 27, 39])
        self.jira.fail_next(unavailable())
        outbox.put(update(2, 100))
        self.drain(outbox)
        self.assertEqual([s.time for s in self.jira.submissions][-2:], [39, 44])

    def test_retry_after_is_honoured(self) -> None:
        outbox = self.make()
        self.jira.fail_next(unavailable(retry_after=42))
        outbox.put(update(1, 100))
        self.clock.advance(0)
        self.clock.advance(41.9)
        self.assertEqual(len(self.jira.submissions), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.jira.submissions), 2)
        self.assertEqual(self.states(), {1: ["successful"]})

    def test_a_malformed_request_is_logged_and_dropped(self) -> None:
        for status in (400, 413):
            outbox = self.make()
            self.jira.fail_next(
                JiraRequestError("the request is malformed", status=status, messages=("x",))
            )
            with captured_log() as lines:
                outbox.put(update(1, 100))
                self.drain(outbox)
            self.assertEqual(len(outbox), 0)
            self.assertEqual(len(self.jira.submissions), 1)
            self.assertTrue(
                any(
                    "dropped: the request is malformed" in line and "app #1" in line
                    for line in lines
                )
            )
            # Dropped as delivered: an older update of the entity stays refused.
            outbox.put(update(1, 99))
            self.assertEqual(len(outbox), 0)

    def test_rejected_entities_are_logged_with_their_build(self) -> None:
        outbox = self.make()
        rejection = Rejection(
            key={"pipelineId": "ci.example.com/app", "buildNumber": 1},
            errors=("displayName is required",),
        )
        self.jira.answer_next(SubmitResult(entity="builds", rejected=(rejection,)))
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertTrue(
            any("rejected" in line and "app #1" in line and "displayName" in line for line in lines)
        )
        self.assertEqual(len(outbox), 0)

    def test_unknown_issue_keys_are_logged(self) -> None:
        outbox = self.make()
        self.jira.answer_next(SubmitResult(entity="builds", unknown_issue_keys=("PROJ-1",)))
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertTrue(any("does not know the issue keys PROJ-1" in line for line in lines))

    def test_missing_permission_keeps_updates_until_it_is_granted(self) -> None:
        outbox = self.make()
        self.jira.failing = JiraPermissionError(
            "POST builds was refused (HTTP 403): the credentials lack the permission", status=403
        )
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.clock.advance(0)
        self.assertEqual(len(outbox), 1)
        self.assertTrue(
            any("configuration problem: " in line and "permission" in line for line in lines)
        )
        self.jira.failing = None  # an admin grants the permission
        self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})


class ReviewedFailureTests(OutboxTestCase):
    def test_a_redirect_or_404_keeps_the_updates_as_a_configuration_problem(self) -> None:
        outbox = self.make()
        for status in (302, 404):
            self.jira.fail_next(JiraRequestError(f"HTTP {status}", status=status))
            with captured_log() as lines:
                outbox.put(update(status, 100 + status))
                self.clock.advance(0)
            self.assertEqual(len(outbox), 1)  # kept, not dropped
            self.assertTrue(any(f"configuration problem: HTTP {status}" in x for x in lines))
            self.drain(outbox)  # the problem is fixed: the next try delivers
        self.assertEqual(sorted(self.states()), [302, 404])

    def test_refused_credentials_or_an_unknown_site_are_configuration_problems(self) -> None:
        for error in (JiraAuthError("credentials refused"), JiraSiteError("no cloud ID")):
            outbox = self.make()
            self.jira.fail_next(error)
            with captured_log() as lines:
                outbox.put(update(1, 100))
                self.clock.advance(0)
            self.assertEqual(len(outbox), 1)
            self.assertTrue(any(f"configuration problem: {error}" in line for line in lines))
            self.drain(outbox)
            self.assertEqual(self.states(), {1: ["successful"]})

    def test_an_unavailable_jira_is_not_called_a_configuration_problem(self) -> None:
        outbox = self.make()
        self.jira.fail_next(unavailable())
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.clock.advance(0)
        held = [line for line in lines if "held and retried" in line]
        self.assertTrue(held)
        self.assertTrue(all("configuration problem" not in line for line in held))
        self.assertTrue(any(UNAVAILABLE in line for line in held))

    def test_retry_after_zero_waits_the_backoff_instead_of_looping(self) -> None:
        outbox = self.make()
        self.jira.fail_next(unavailable(retry_after=0))
        outbox.put(update(1, 100))
        self.clock.advance(0)
        self.clock.advance(4.9)
        self.assertEqual(len(self.jira.submissions), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.jira.submissions), 2)

    def test_an_update_made_during_a_backoff_is_saved_at_once(self) -> None:
        outbox = self.make()
        self.jira.fail_next(unavailable())
        outbox.put(update(1, 100))
        self.clock.advance(0)
        outbox.put(update(2, 200))
        self.clock.advance(0)
        self.assertEqual(len(self.jira.submissions), 1)  # still waiting out the backoff
        self.assertEqual(sorted(u["key"] for u in self.store.saved), [KEY.format(1), KEY.format(2)])

    def test_an_unexpected_error_keeps_the_batch(self) -> None:
        outbox = self.make()
        self.jira.fail_next(RuntimeError("a bug"))
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})
        self.assertTrue(any("unexpected error" in line for line in lines))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_failed_save_does_not_stop_delivery(self) -> None:
        outbox = self.make(store=FirstWriteFails())
        with captured_log() as lines:
            outbox.put(update(1, 100))
            self.drain(outbox)
        self.assertEqual(self.states(), {1: ["successful"]})
        self.assertTrue(any("could not save pending Jira updates" in line for line in lines))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
