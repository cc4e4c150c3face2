"""The apps are layers: each imports only itself and the layers below it (pyproject.toml's
import-linter contracts), and the contracts do catch an import from a higher layer."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from importlinter import api
from importlinter.application import use_cases

PYPROJECT = Path(settings.BASE_DIR) / "pyproject.toml"
TOP_TO_BOTTOM = ["billing_console", "invoices", "payments", "notifications", "accounts", "core"]
# A throwaway package holding one package per layer, named as the apps are.
PROBE = "layers_probe"


@pytest.fixture(scope="module")
def contracts() -> dict[str, dict]:
    """The project's contracts, by type."""
    return {c["type"]: c for c in api.read_configuration(str(PYPROJECT))["contracts_options"]}


def lint(config: Path, capsys) -> tuple[bool, str]:
    """What ``lint-imports --config <config> --no-cache`` says: all kept or not, and its report."""
    capsys.readouterr()
    kept = use_cases.lint_imports(config_filename=str(config), cache_dir=None, no_logo=True)
    # One line of words: the report wraps at the terminal's width.
    return kept, " ".join(capsys.readouterr().out.split())


def test_the_layers_are_the_documented_ones_with_nothing_ignored(contracts):
    assert set(contracts) == {"layers", "forbidden"}
    assert contracts["layers"]["layers"] == TOP_TO_BOTTOM
    # An ignored import would need its reason written in the contract; none is needed.
    assert not any(contract.get("ignore_imports") for contract in contracts.values())


def test_every_app_imports_only_its_own_layer_and_those_below(capsys):
    kept, report = lint(PYPROJECT, capsys)
    assert kept, report
    assert "Contracts: 2 kept, 0 broken." in report


def _probe(root: Path, extra: dict[str, str]) -> None:
    """Each layer's ``models`` importing the one below it (allowed), plus the ``extra`` modules."""
    package = root / PROBE
    package.mkdir()
    (package / "__init__.py").write_text("")
    for index, layer in enumerate(TOP_TO_BOTTOM):
        (package / layer).mkdir()
        (package / layer / "__init__.py").write_text("")
        below = TOP_TO_BOTTOM[index + 1 : index + 2]
        (package / layer / "models.py").write_text(
            "".join(f"from {PROBE}.{b} import models\n" for b in below)
        )
        (package / layer / "services.py").write_text("")
    for name, source in extra.items():
        (package / name.replace(".", "/")).with_suffix(".py").write_text(source)


def _probe_config(contracts: dict[str, dict], root: Path, monkeypatch) -> Path:
    """The project's own contracts, applied to the throwaway package under ``root``."""
    monkeypatch.syspath_prepend(str(root))
    layers, forbidden = contracts["layers"], contracts["forbidden"]
    config = root / "pyproject.toml"
    config.write_text(
        f"""[tool.importlinter]
root_packages = ["{PROBE}"]

[[tool.importlinter.contracts]]
name = {json.dumps(layers["name"])}
type = "layers"
containers = ["{PROBE}"]
layers = {json.dumps(layers["layers"])}

[[tool.importlinter.contracts]]
name = {json.dumps(forbidden["name"])}
type = "forbidden"
source_modules = {json.dumps(forbidden["source_modules"])}
forbidden_modules = {json.dumps(forbidden["forbidden_modules"])}
"""
    )
    return config


def test_the_contracts_keep_imports_that_go_down(contracts, tmp_path, capsys, monkeypatch):
    _probe(tmp_path, {"billing_console.views": f"from {PROBE}.invoices import services\n"})
    kept, report = lint(_probe_config(contracts, tmp_path, monkeypatch), capsys)
    assert kept, report
    assert "Contracts: 2 kept, 0 broken." in report


@pytest.mark.parametrize(
    ("module", "source", "broken", "culprit"),
    [
        # Payments reaching up into invoices, as it once did to reset next_attempt_at.
        ("payments.services", f"from {PROBE}.invoices import models\n", "layers", "payments.services"),
        # The ground floor importing an app, even lazily inside a function.
        ("core.views", f"def f():\n    from {PROBE}.accounts import models\n", "layers", "core.views"),
        (
            "notifications.rendering",
            f"import {PROBE}.billing_console.models\n",
            "layers",
            "notifications.rendering",
        ),
        ("payments.models", f"from {PROBE}.payments import services\n", "forbidden", "payments.models"),
    ],
    ids=["payments imports invoices", "core imports accounts", "notifications imports the console", "models"],
)
def test_the_contracts_break_on_a_forbidden_import(
    contracts, tmp_path, capsys, monkeypatch, module, source, broken, culprit
):
    _probe(tmp_path, {module: source})
    kept, report = lint(_probe_config(contracts, tmp_path, monkeypatch), capsys)
    assert not kept, report
    assert "Contracts: 1 kept, 1 broken." in report
    assert f"{contracts[broken]['name']} BROKEN" in report
    assert f"{PROBE}.{culprit}" in report


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    """The product's own text, by path: code, templates and the console's script."""
    root = Path(settings.BASE_DIR)
    return {
        str(path.relative_to(root)): path.read_text()
        for folder in [*TOP_TO_BOTTOM, "templates", "static"]
        for path in (root / folder).rglob("*")
        if path.suffix in {".py", ".html", ".txt", ".js"} and "migrations" not in path.parts
    }


@pytest.mark.parametrize(
    ("words", "home"),
    [
        ('"Backup %(n)s"', "payments/ranks.py"),
        ('_("Primary")', "payments/ranks.py"),
        ('"the card was reported lost"', "payments/declines.py"),
        ('"revocation_of_all_authorizations"', "payments/declines.py"),
    ],
)
def test_the_charge_order_labels_and_decline_words_are_written_once(sources, words, home):
    """The charge order's labels and the decline vocabulary (the codes' classes and the words a
    customer reads) each have one home, which the rest call. A gateway's own reply text is its own."""
    assert [path for path, text in sources.items() if words in text] == [home]
