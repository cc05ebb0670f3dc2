"""What a notification says: a Slack/Mattermost-compatible webhook body, and an email.

Both carry the event, the job, the reason, its figures and a link to the job's page. The
webhook body is what Slack's and Mattermost's incoming webhooks take (`text`, `attachments`),
and `props.bosun` holds the same facts as data for a receiver that reads them.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#757575", "time_limit": "#ef6c00",
           "preempted": "#1565c0", "worker_lost": "#ef6c00", "test": "#1565c0"}
HEADLINES = {"succeeded": "succeeded", "failed": "failed", "cancelled": "was cancelled",
             "time_limit": "reached its time limit", "preempted": "was preempted", "worker_lost": "lost an attempt",
             "test": ""}


def job_link(base_url: str, payload: dict[str, Any]) -> str | None:
    job = payload.get("job")
    return f"{base_url.rstrip('/')}/jobs/{job}" if job is not None else None


def figure(value: float) -> str:
    return f"{value:.4g}"


def title(payload: dict[str, Any]) -> str:
    """One line: `job 12 "dino lr 3e-4" (pretrain) failed`."""
    if payload["event"] == "test":
        return f"bosun: a test message for {payload['owner']}"
    name = f' "{payload["name"]}"' if payload.get("name") else ""
    return f"job {payload['job']}{name} ({payload['type']}) {HEADLINES[payload['event']]}"


def webhook_body(payload: dict[str, Any], base_url: str) -> dict[str, Any]:
    link = job_link(base_url, payload)
    metrics = payload.get("metrics") or {}
    text = f"{title(payload)}: {payload['reason']}" + (f" <{link}|open>" if link else "")
    fields = [{"title": name, "value": figure(value), "short": True} for name, value in metrics.items()]
    attachment = {"color": COLOURS[payload["event"]], "title": title(payload), "text": payload["reason"],
                  "fields": fields, "fallback": text}
    if link:
        attachment["title_link"] = link
    return {"username": "bosun", "text": text, "attachments": [attachment],
            "props": {"bosun": {**payload, "url": link}}}


def email_message(payload: dict[str, Any], base_url: str, *, sender: str, recipient: str) -> EmailMessage:
    link = job_link(base_url, payload)
    lines = [title(payload), "", f"reason: {payload['reason']}"]
    if payload.get("job") is not None:
        lines.append(f"attempts: {payload['attempts']} of {payload['max_attempts']}")
    lines += [f"{name}: {figure(value)}" for name, value in (payload.get("metrics") or {}).items()]
    if link:
        lines += ["", link]
    message = EmailMessage()
    message["Subject"] = f"[bosun] {title(payload)}"
    message["From"], message["To"] = sender, recipient
    message.set_content("\n".join(lines) + "\n")
    return message
