"""Notifications on the real stack: a user sets a webhook and an email with `bosun notify`; a kNN
evaluation that succeeds, a pretraining whose worker is killed with kill -9 and which then reaches
its time limit on another worker, and a test message each reach a local webhook receiver (whose
first post fails) and a local SMTP server (aiosmtpd), sent by the workers."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import running_stack
from tests.notify_receivers import smtp_server, webhook_receiver
from tests.stack import bosun, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration
PUBLIC = "http://bosun.lab.example:8000"
KNN = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
       "protocols": ["knn"], "batch_size": 32}


def events_of(hook) -> list[tuple[str, int | None]]:
    return [(b["props"]["bosun"]["event"], b["props"]["bosun"].get("job")) for b in hook.bodies]


@pytest.mark.timeout(900)
def test_final_states_a_lost_worker_and_a_time_limit_are_told_by_webhook_and_email(tmp_path, data_root) -> None:
    with webhook_receiver(failures=1) as hook, smtp_server() as box, running_stack(
            tmp_path, data_root, smtp_host=box.host, smtp_port=str(box.port), smtp_from="bosun@lab.example",
            public_url=PUBLIC, notify_interval_seconds="0.5", notify_retry_seconds="0.5") as stack:
        ben = {**stack.env, "BOSUN_API_URL": stack.url,
               "BOSUN_TOKEN": stack.other.http.headers["Authorization"].removeprefix("Bearer ")}
        printed = bosun(ben, "notify", "--webhook", hook.url, "--email", "ben@lab.example", "--test")
        assert f"ben: webhook {hook.url}, email ben@lab.example" in printed, printed
        assert "a test message queued to 2 channels" in printed

        first = stack.worker(name="first@box")
        wait_for(lambda: ("test", None) in events_of(hook) and box.messages, 120, "the test message")
        knn = stack.other.submit("evaluate", KNN, name="knn resnet18")
        assert stack.other.wait(knn["id"], timeout=300)["status"] == "succeeded", stack.logs()

        spec = {**tiny_dino_spec(epochs=200, knn_every=0), "log_every": 1}
        spec["backbone"]["kwargs"]["depth"] = 2
        spec["dataset"]["max_per_split"], spec["dino"]["batch_size_per_gpu"] = 64, 16
        dino = stack.other.submit("pretrain", spec, name="dino long", max_runtime="10s")["id"]
        wait_for(lambda: any(re.match(r"checkpoint at step \d+ committed", line["text"])
                             for line in stack.other.logs(dino)), 180, "the pretraining's first checkpoint")
        first.kill()
        stack.worker(name="second@box")
        done = stack.other.wait(dino, timeout=300)
        assert (done["status"], done["error"], done["attempts"]) == ("cancelled", "time limit", 2), done
        wait_for(lambda: len(hook.bodies) >= 4 and len(box.messages) >= 4, 60, "every message")

        assert events_of(hook) == [("test", None), ("succeeded", knn["id"]), ("worker_lost", dino),
                                   ("time_limit", dino)]
        assert hook.tries == 5  # the first post was answered 503 and tried again
        succeeded, lost, limited = hook.bodies[1:]
        assert succeeded["attachments"][0]["title_link"] == f"{PUBLIC}/jobs/{knn['id']}"
        assert {f["title"] for f in succeeded["attachments"][0]["fields"]} >= {"knn_top1"}
        assert "first@box" in lost["props"]["bosun"]["reason"] and "stopped heartbeating" in lost["text"]
        assert limited["text"].startswith(f'job {dino} "dino long" (pretrain) reached its time limit: time limit')
        assert "loss" in limited["props"]["bosun"]["metrics"]  # the newest loss of the stopped run

        subjects = sorted(m["Subject"] for m in box.messages)
        assert subjects == sorted(["[bosun] bosun: a test message for ben",
                                   f'[bosun] job {knn["id"]} "knn resnet18" (evaluate) succeeded',
                                   f'[bosun] job {dino} "dino long" (pretrain) lost an attempt',
                                   f'[bosun] job {dino} "dino long" (pretrain) reached its time limit'])
        assert all(r == ["ben@lab.example"] for r in box.recipients)

        listed = bosun(ben, "notify")
        assert listed.count("delivered") == 8, listed
