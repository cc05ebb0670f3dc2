"""The submit path's database work: the token lookup and the INSERT, one transaction, nothing else.

A submission is the API's hottest request (bench_queue measures its rate): every extra statement is
a round trip on every submit, such as a lazy load of the new job's tags while it is answered.
"""

from __future__ import annotations

from sqlalchemy import event

from shared.db.session import get_engine
from tests.api.conftest import EVALUATE


def statements_of(settings, call) -> list[str]:
    """The SQL statements (first word and table) that `call()` executes, and the commits."""
    seen: list[str] = []
    engine = get_engine(settings.database_url)

    def executed(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()[:3]))

    def committed(_conn) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", executed)
    event.listen(engine, "commit", committed)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine, "commit", committed)
    return seen


def test_a_submission_is_one_lookup_one_insert_and_one_commit(api, embedded_settings) -> None:
    api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob"))  # warm
    answers = []
    seen = statements_of(embedded_settings, lambda: answers.append(api.post(
        "/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "tags": []}, headers=api.as_("bob"))))
    assert answers[0].status_code == 201, answers[0].text
    assert answers[0].json()["tags"] == [] and answers[0].json()["owner"] == "bob"
    assert [s.split()[0] for s in seen] == ["SELECT", "INSERT", "COMMIT"], seen
    assert "INTO jobs" in seen[1]


def test_a_tagged_submission_adds_only_its_tag_rows(api, embedded_settings) -> None:
    answers = []
    seen = statements_of(embedded_settings, lambda: answers.append(api.post(
        "/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "tags": ["b", "a"]}, headers=api.as_("bob"))))
    assert answers[0].status_code == 201, answers[0].text
    assert answers[0].json()["tags"] == ["a", "b"]
    assert [s.split()[0] for s in seen] == ["SELECT", "INSERT", "INSERT", "COMMIT"], seen
