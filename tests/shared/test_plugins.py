"""The plugin registry (shared.plugins) on real distributions written to a folder on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shared.plugins import BrokenPlugin, DuplicatePlugin, UnknownPlugin, discover, load_plugin

FOCAL = Path(__file__).resolve().parents[1] / "plugins" / "focal"


def distribution(root: Path, name: str, entry_points: str, module: str | None = None, code: str = "") -> None:
    """A minimal installed distribution `name` below `root`: METADATA, entry_points.txt and its module."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"  # the wheel spelling: one "-" before the version
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module is not None:
        (root / f"{module}.py").write_text(code)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("plug_")]:
        del sys.modules[name]


def test_the_example_plugin_is_found_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FOCAL))
    plugins = discover()
    assert plugins.names()["losses"] == ["focal"]
    assert plugins.names()["methods"] == [] and plugins.broken == ()
    assert load_plugin("losses", "focal").__name__ == "FocalDistillation"


def test_a_name_declared_twice_in_a_group_raises(site: Path) -> None:
    distribution(site / "a", "plug-a", "[bosun.losses]\nfocal = plug_a:Term\n", "plug_a", "class Term: ...\n")
    distribution(site / "b", "plug-b", "[bosun.losses]\nfocal = plug_b:Term\n", "plug_b", "class Term: ...\n")
    sys.path[:0] = [str(site / "a"), str(site / "b")]
    with pytest.raises(DuplicatePlugin, match=r"'focal' is declared twice: plug_a:Term \(from plug-a\) and "
                                              r"plug_b:Term \(from plug-b\)"):
        discover()


def test_one_name_in_two_groups_is_no_duplicate(site: Path) -> None:
    distribution(site, "plug-c", "[bosun.losses]\nshared = plug_c:A\n[bosun.datasets]\nshared = plug_c:B\n",
                 "plug_c", "A = B = 1\n")
    names = discover().names()
    assert names["losses"] == ["shared"] and names["datasets"] == ["shared"]


def test_a_missing_module_is_reported_not_advertised(site: Path) -> None:
    distribution(site, "plug-gone", "[bosun.losses]\ngone = plug_gone_module:Term\n")
    distribution(site / "ok", "plug-ok", "[bosun.losses]\nfine = plug_ok:Term\n", "plug_ok", "Term = 1\n")
    sys.path.insert(0, str(site / "ok"))
    plugins = discover()
    assert plugins.names()["losses"] == ["fine"]
    assert len(plugins.broken) == 1 and "'gone'" in plugins.broken[0]
    assert "module 'plug_gone_module' is not installed" in plugins.broken[0]


def test_a_plugin_failing_to_import_raises_broken_plugin_with_its_error(site: Path) -> None:
    distribution(site, "plug-bad", "[bosun.losses]\nbad = plug_bad:Term\n", "plug_bad",
                 "raise RuntimeError('needs a GPU library this box lacks')\n")
    assert discover().names()["losses"] == ["bad"]  # discovery imports nothing
    with pytest.raises(BrokenPlugin, match="'bad' = plug_bad:Term .* RuntimeError: needs a GPU library"):
        load_plugin("losses", "bad")


def test_an_unknown_name_lists_the_known_ones(site: Path) -> None:
    distribution(site, "plug-d", "[bosun.losses]\nknown = plug_d:Term\n", "plug_d", "Term = 1\n")
    with pytest.raises(UnknownPlugin, match="no bosun.losses plugin 'missing' is installed here; known: known"):
        load_plugin("losses", "missing")
