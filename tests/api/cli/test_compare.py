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


def test_cli_compares_pretrainings_with_their_spec_diff_and_overlaid_curves(api, cli_as, pretrainings,
                                                                          tmp_path) -> None:
    from PIL import Image

    from tests.api.cli.conftest import bosun

    cli_as("bob")
    png = tmp_path / "loss.png"
    done = bosun("compare", str(pretrainings["slow"]), str(pretrainings["fast"]), "--curves", str(png))
    assert done.exit_code == 0, done.output
    assert "pretrain jobs (final metrics)" in done.output and "spec fields that differ" in done.output
    lines = done.output.splitlines()
    assert any("dino.lr" in line and "0.0005" in line and "0.0003" in line for line in lines), done.output
    assert any(line.startswith("│ loss ") and "3.100" in line and "2.700" in line for line in lines), done.output
    assert f"loss of 2 jobs drawn into {png}" in done.output.replace("\n", "")
    image = Image.open(png).convert("RGB")
    assert image.size == (840, 480)
    colours = {pixel for pixel in image.getdata() if max(pixel) - min(pixel) > 60}  # the lines' colours
    assert len(colours) > 20, "no coloured curve drawn"
    missing = bosun("compare", str(pretrainings["slow"]), "--curves", str(png), "--metric", "nothing")
    assert missing.exit_code == 1 and "none of the jobs has a metric 'nothing'" in missing.output
