"""The REST contract, fuzzed: schemathesis generates cases for every operation of the OpenAPI schema
against a real API (uvicorn) on SQLite and on Postgres, with an admin token.

Every answer must be below 500, match its documented schema and have a documented status.
Generation is derandomized (hypothesis' fixed seed per operation), so a run is repeatable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.stack import bosun, postgres_database, stack_env, start_api

POSITIVE_PER_OPERATION = 30
NEGATIVE_PER_OPERATION = 12


@contextmanager
def served_api(home: Path, data_root: Path, backend: str) -> Iterator[tuple[str, str]]:
    """(url, admin token) of the API under uvicorn on a fresh SQLite file or Postgres database."""
    home.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def database() -> Iterator[str]:
        if backend == "sqlite":
            yield f"sqlite:///{home / 'bosun.db'}"
        else:
            with postgres_database() as url:
                yield url

    with database() as url:
        # Negative cases send broken Authorization headers; the throttle (tested in test_accounts) would
        # then answer 429 to everything after, so it is set out of reach here.
        env = stack_env(home, data_root=str(data_root), database_url=url, auth_failure_limit="1000000")
        bosun(env, "db", "upgrade")
        bosun(env, "users", "add", "bob")  # a second user and token for the routes to find
        token = bosun(env, "users", "add", "ada", "--admin").strip().splitlines()[-1]
        proc, api_url = start_api(env, home / "api.log")
        try:
            yield api_url, token
        finally:
            proc.kill()
        assert "Traceback" not in proc.output(), proc.output()[-4000:]


def fuzz(url: str, token: str) -> tuple[Counter, list[str]]:
    """Run every operation's positive and negative cases; returns the counts and a sample of failures."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    auth = {"Authorization": f"Bearer {token}"}
    counts: Counter = Counter()
    failures: list[str] = []
    checks = {"server errors": not_a_server_error, "schema violations": response_schema_conformance,
              "undocumented statuses": status_code_conformance}
    operations = [result.ok() for result in schema.get_all_operations()]
    counts["operations"] = len(operations)

    for operation in operations:
        for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_PER_OPERATION),
                               (GenerationMode.NEGATIVE, NEGATIVE_PER_OPERATION)):
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                # run() is called within this loop iteration, so `operation` is the one it was made for
                revoking_own = (operation.path == "/api/v1/tokens/{token_id}"  # noqa: B023
                                and case.path_parameters.get("token_id") == 2)
                if revoking_own:
                    return  # revoking the fuzzer's own token (ada's, id 2) would end the run in 401s
                response = case.call(base_url=url, headers=auth, timeout=30)
                counts["cases"] += 1
                counts[f"status {response.status_code}"] += 1
                for name, check in checks.items():
                    try:
                        case.validate_response(response, checks=[check], headers=auth)
                    except FailureGroup as group:
                        counts[name] += 1
                        if len(failures) < 20:
                            failures.append(f"{name}: {case.method} {case.formatted_path} -> "
                                            f"{response.status_code} {response.text[:300]} ({group.exceptions[0]})")
            try:
                run()
            except Unsatisfiable:  # no invalid input exists (an operation without parameters or body)
                counts["operations without negative cases"] += 1
    return counts, failures


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fuzzed_contract_has_no_server_errors_schema_violations_or_undocumented_statuses(
        backend: str, tmp_path: Path, data_root: Path) -> None:
    with served_api(tmp_path / "home", data_root, backend) as (url, token):
        counts, failures = fuzz(url, token)
    statuses = {k: v for k, v in sorted(counts.items()) if k.startswith("status")}
    print(f"\nschemathesis on {backend}: {counts['cases']} cases over {counts['operations']} operations; "
          f">=500: {counts['server errors']}, schema violations: {counts['schema violations']}, "
          f"undocumented statuses: {counts['undocumented statuses']}; {statuses}")
    assert counts["cases"] >= 1000
    assert (counts["server errors"], counts["schema violations"], counts["undocumented statuses"]) == (0, 0, 0), \
        "\n".join(failures)
