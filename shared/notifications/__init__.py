"""Telling people about their jobs: a per-user webhook (Slack/Mattermost-compatible JSON) and
email, on final states, preemption, a lost attempt and a time limit.

`outbox` writes the messages in the transaction of the state change that causes them;
`delivery` sends them from the workers, retrying with backoff; `messages` says what they say.
"""

from shared.notifications.outbox import EVENTS, notify_job, notify_test

__all__ = ["EVENTS", "notify_job", "notify_test"]
