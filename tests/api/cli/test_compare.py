"""`bosun compare`'s table: one column per job, the best value of each metric in bold."""

from __future__ import annotations

from rich.console import Console

from api.cli.compare import comparison_table


def test_cli_table_marks_the_best_of_each_metric(api, compared_jobs: dict[str, int]) -> None:
    jobs = compared_jobs
    comparison = api.get(f"/api/v1/compare?jobs={jobs['trained']},{jobs['random']}", headers=api.as_("alice")).json()
    console = Console(record=True, width=80)
    console.print(comparison_table(comparison))
    lines = console.export_text(clear=False).splitlines()
    assert f"{jobs['trained']} dino teacher" in lines[2] and f"{jobs['random']} random init" in lines[2]

    def cells(metric: str) -> list[str]:
        row = next(line for line in lines if line.startswith(f"│ {metric} "))
        return [c.strip() for c in row.strip("│").split("│")]

    assert cells("knn_top1") == ["knn_top1", "0.810", "0.420"] and cells("mce") == ["mce", "92.5", ""]
    assert cells("source") == ["source", f"job {jobs['pretrain']} (teacher)", "random init"]
    styled = console.export_html(inline_styles=True)
    assert 'font-weight: bold">0.810' in styled and 'font-weight: bold">0.420' not in styled
    assert 'font-weight: bold">92.5' not in styled  # a metric of one job only has no best


def test_cli_table_shows_intervals_and_marks_noise(api, measured: dict[str, int]) -> None:
    comparison = api.get(f"/api/v1/compare?jobs={measured['best']},{measured['close']}",
                         headers=api.as_("alice")).json()
    console = Console(record=True, width=100)
    console.print(comparison_table(comparison))
    lines = console.export_text(clear=False).splitlines()

    def cells(metric: str) -> list[str]:
        row = next(line for line in lines if line.startswith(f"│ {metric} "))
        return [c.strip() for c in row.strip("│").split("│")]

    assert cells("knn_top1") == ["knn_top1", "0.840 [0.80, 0.88]", "0.810 [0.76, 0.85] ≈"]
    assert cells("linear_top1") == ["linear_top1", "0.800 [0.75, 0.84]", "0.620 [0.56, 0.67]"]
    assert cells("knn_f1") == ["knn_f1", "0.800", "0.850"]
    assert any("95% Wilson interval" in line for line in lines)
