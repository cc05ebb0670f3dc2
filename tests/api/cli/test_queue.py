"""`bosun queue` shows the whole queue, every page of GET /api/v1/queue, as one dispatch pass decided it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.client import Client
from tests.api.cli.conftest import bosun
from tests.api.conftest import EVALUATE


def submit(api, n: int) -> list[int]:
    return [api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "name": f"q{i}"},
                     headers=api.as_("bob")).json()["id"] for i in range(n)]


def client_of(api, who: str) -> Client:
    client = Client("http://testserver", api.tokens[who])
    client.http = TestClient(api.app, headers=api.as_(who))
    return client


def test_queue_lists_every_waiting_job_past_the_first_page(api, cli_as) -> None:
    ids = submit(api, 130)  # the API's page is 100 entries unless asked for more
    api.dispatch()
    cli_as("bob")
    result = bosun("queue")
    assert result.exit_code == 0, result.output
    rows = [line.split("│") for line in result.output.splitlines() if line.count("│") > 8]
    listed = [int(cells[3]) for cells in rows if cells[3].strip().isdigit()]
    assert listed == ids and [int(cells[2]) for cells in rows if cells[2].strip().isdigit()] == list(range(1, 131))
    assert "130 queued; free slots {}" in result.output


def test_whole_queue_reads_the_pages_of_one_pass(api) -> None:
    ids = submit(api, 5)
    api.dispatch()
    client = client_of(api, "bob")
    whole = client.whole_queue(page=2)
    assert [e["id"] for e in whole["data"]] == ids and whole["count"] == 5

    pages = []
    read_page = client.queue

    def queue_with_a_pass_after_the_first_page(queue=None, **page):
        pages.append(page.get("offset", 0))
        if len(pages) == 2:
            api.dispatch()
        return read_page(queue, **page)

    client.queue = queue_with_a_pass_after_the_first_page
    whole = client.whole_queue(page=2)
    assert pages == [0, 2, 0, 2, 4]  # the second page came from a newer pass: read again from the first
    assert [e["id"] for e in whole["data"]] == ids
