"""Names, tags and notes of jobs: set at submit or later by the owner or an admin, jobs listed by tag."""

from __future__ import annotations

from tests.api.conftest import EVALUATE


def submit(api, who: str = "bob", **extra) -> dict:
    response = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, **extra}, headers=api.as_(who))
    assert response.status_code == 201, response.text
    return response.json()


def test_tags_and_notes_given_at_submit_are_kept_and_listed_by_tag(api) -> None:
    lr = submit(api, name="lr 3e-4", tags=["ablation-lr", "vit-t", "ablation-lr"], notes="does a lower lr help?")
    other = submit(api, tags=["vit-t"])
    submit(api)
    assert lr["tags"] == ["ablation-lr", "vit-t"] and lr["notes"] == "does a lower lr help?"
    page = api.get("/api/v1/jobs", params={"tag": "vit-t"}, headers=api.as_("bob")).json()
    assert [j["id"] for j in page["data"]] == [other["id"], lr["id"]] and page["count"] == 2
    assert page["data"][1]["tags"] == ["ablation-lr", "vit-t"] and "notes" not in page["data"][1]
    only = api.get("/api/v1/jobs", params={"tag": "ablation-lr"}, headers=api.as_("bob")).json()
    assert [j["id"] for j in only["data"]] == [lr["id"]]
    assert api.get("/api/v1/jobs", params={"tag": "nothing"}, headers=api.as_("bob")).json()["count"] == 0


def test_the_owner_or_an_admin_edits_name_tags_and_notes_in_any_state(api) -> None:
    job = submit(api, tags=["a", "b"])
    url = f"/api/v1/jobs/{job['id']}"
    edited = api.patch(url, json={"name": "baseline", "add_tags": ["c"], "remove_tags": ["a"], "notes": "kNN 0.41"},
                       headers=api.as_("bob"))
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "baseline" and edited.json()["tags"] == ["b", "c"]
    assert edited.json()["notes"] == "kNN 0.41"
    kept = api.patch(url, json={"tags": ["final"]}, headers=api.as_("bob")).json()
    assert kept["tags"] == ["final"] and kept["name"] == "baseline" and kept["notes"] == "kNN 0.41"
    assert api.post(f"{url}/cancel", headers=api.as_("bob")).status_code == 200
    by_admin = api.patch(url, json={"add_tags": ["reviewed"]}, headers=api.as_("alice"))
    assert by_admin.status_code == 200 and by_admin.json()["tags"] == ["final", "reviewed"]
    audit = api.get("/api/v1/audit", params={"action": "edit"}, headers=api.as_("alice")).json()["data"]
    assert audit[0]["actor"] == "alice" and audit[0]["detail"]["after"]["tags"] == ["final", "reviewed"]
    rerun = api.post(f"{url}/rerun", headers=api.as_("bob")).json()
    assert rerun["tags"] == ["final", "reviewed"] and rerun["notes"] == ""


def test_others_may_not_edit_and_bad_tags_name_the_field(api) -> None:
    from shared.accounts import create_user
    from shared.db import session_scope

    job = submit(api)
    with session_scope(api.app.state.settings.database_url) as s:
        _, carol = create_user(session=s, name="carol")
    refused = api.patch(f"/api/v1/jobs/{job['id']}", json={"notes": "mine now"},
                        headers={"Authorization": f"Bearer {carol}"})
    assert refused.status_code == 403 and "only its owner or an admin" in refused.text
    for body, field in (({"tags": ["has space"]}, "tags"), ({"add_tags": ["x" * 65]}, "add_tags"),
                        ({"tags": [f"t{i}" for i in range(33)]}, "tags"), ({"notes": "x" * 10001}, "notes"),
                        ({"owner": "carol"}, "owner")):
        response = api.patch(f"/api/v1/jobs/{job['id']}", json=body, headers=api.as_("bob"))
        assert response.status_code == 422 and field in response.text, (body, response.text)
    bad = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE, "tags": ["no/slash"]},
                   headers=api.as_("bob"))
    assert bad.status_code == 422 and "tags" in bad.text
