"""`bosun notify`: where you are told about your jobs (a webhook, email), which events, and how the
newest messages went (REST)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from api.cli import rest
from api.cli.console import column, console, cut, fail, fitted_table, flexible

app = typer.Typer()


def changes_asked(webhook: str | None, email: str | None, events: str | None, no_webhook: bool,
                  no_email: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if webhook is not None or no_webhook:
        changes["webhook_url"] = None if no_webhook else webhook
    if email is not None or no_email:
        changes["email"] = None if no_email else email
    if events is not None:
        changes["events"] = None if events == "all" else [e.strip() for e in events.split(",") if e.strip()]
    return changes


@app.command()
def notify(user: Annotated[str | None, typer.Argument(help="user name (default: you)")] = None,
           webhook: Annotated[str | None, typer.Option(help="incoming-webhook URL (Slack/Mattermost JSON)")] = None,
           email: Annotated[str | None, typer.Option(help="an address to email")] = None,
           events: Annotated[str | None, typer.Option(help="comma-separated events, or 'all': succeeded, failed, "
                                                           "cancelled, time_limit, preempted, worker_lost")] = None,
           no_webhook: Annotated[bool, typer.Option("--no-webhook", help="stop posting to the webhook")] = False,
           no_email: Annotated[bool, typer.Option("--no-email", help="stop emailing")] = False,
           test: Annotated[bool, typer.Option("--test", help="send a test message to each channel")] = False) -> None:
    """Show where you are told about your jobs; with options, change it. An option left out keeps its value."""
    if webhook is not None and no_webhook or email is not None and no_email:
        fail("give either --webhook or --no-webhook (--email or --no-email), not both", code=2)
    name = user or rest.call(lambda c: c.whoami())["user"]
    changes = changes_asked(webhook, email, events, no_webhook, no_email)
    current = rest.call(lambda c: c.set_notifications(name, **changes)) if changes else None
    if test:
        queued = rest.call(lambda c: c.test_notifications(name))["queued"]
        console.print(f"a test message queued to {queued} channel{'s' * (queued != 1)}; "
                      "a worker sends it within seconds")
    current = rest.call(lambda c: c.notifications(name)) if current is None or test else current
    email_note = "" if current["email_enabled"] else " (this server sends no email)"
    console.print(f"{escape(current['user'])}: webhook {escape(current['webhook_url'] or 'none')}, "
                  f"email {escape(current['email'] or 'none')}{email_note}")
    console.print(f"events: {', '.join(current['events'])}")
    if current["recent"]:
        table = fitted_table(column("when", max_width=16), "event", "job", "channel", "state", "tries",
                             flexible("error"))
        for m in current["recent"]:
            table.add_row(m["created_at"][:16].replace("T", " "), m["event"], str(m["job"] or ""), m["channel"],
                          m["state"], str(m["attempts"]), cut(m["last_error"]))
        console.print(table)
