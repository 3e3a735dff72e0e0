"""The mutation-testing tools (scripts/mutate.py, scripts/mutation_report.py; docs/testing.md)."""

import json
import tomllib
from pathlib import Path

import pytest

from scripts import mutate, mutation_report

ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_table_covers_exactly_the_core_modules():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["only_mutate"] == [m.source for m in mutate.CORE]
    for module in mutate.CORE:
        assert (ROOT / module.source).is_file(), module.source
        for test in module.tests:
            assert (ROOT / test).is_file(), test
            assert any(test.startswith(s) for s in config["pytest_add_cli_args_test_selection"])


def test_a_work_table_is_narrowed_to_one_module_and_its_own_tests():
    module = next(m for m in mutate.CORE if m.key == "losses/distance.py")
    text = mutate._work_pyproject(module)
    config = tomllib.loads(text)
    table = config["tool"]["mutmut"]
    assert table["only_mutate"] == ["src/lossd/losses/distance.py"]
    assert table["pytest_add_cli_args_test_selection"][:2] == list(module.tests)
    assert table["pytest_add_cli_args_test_selection"][2] == "--deselect"
    assert table["pytest_add_cli_args"][:2] == [
        "-m",
        "not slow and not gpu and not ddp and not slurm and not integration",
    ]
    assert config["tool"]["pytest"]["ini_options"]["markers"]  # the rest of the file is kept
    assert text.count("[tool.mutmut]") == 1


def test_dataset_modules_are_mutated_in_their_codec_only():
    module = next(m for m in mutate.CORE if m.key == "data/potsdam.py")
    assert module.patterns == (
        "lossd.data.potsdam.x_decode__mutmut_*",
        "lossd.data.potsdam.x_encode__mutmut_*",
    )
    names = mutate.in_scope(module)
    assert names and all(".x_decode__" in n or ".x_encode__" in n for n in names)


def test_the_sample_is_deterministic_and_stable():
    names = [f"m.x_f__mutmut_{i}" for i in range(1, 400)]
    sample = mutate.sample(names, 150)
    assert len(sample) == 150 and sample == sorted(sample)
    assert mutate.sample(list(reversed(names)), 150) == sample
    assert mutate.sample(names[:10], 150) == sorted(names[:10])
    assert mutate.sample(names, 0) == sorted(names)


def _summary(survivors):
    row = {
        "module": "metrics/confusion.py",
        "tests": ["tests/metrics/test_confusion.py"],
        "functions": [],
        "in_scope": 54,
        "mutants": 54,
        "killed": 50,
        "survived": len(survivors),
        "timeout": 1,
        "no_tests": 0,
        "not_checked": 0,
        "seconds": 12.0,
        "error": None,
        "survivors": survivors,
    }
    return {"tool": "mutmut 3.8.1", "modules": [row]}


DIFF = "--- a\n+++ b\n@@ -1 +1 @@\n-    x = a | b\n+    x = a & b\n"
DOC = """# T
<!-- mutation-table:begin -->
old
<!-- mutation-table:end -->
<!-- survivors:begin -->
| mutant | change | disposition |
|---|---|---|
| `m.x_f__mutmut_1` | `x` → `y` | equivalent: the same value |
<!-- survivors:end -->
"""


def test_the_report_keeps_dispositions_and_scores_without_equivalents(tmp_path, capsys):
    survivors = {"m.x_f__mutmut_1": DIFF, "m.x_f__mutmut_2": DIFF, "m.x_f__mutmut_3": DIFF}
    (tmp_path / "summary.json").write_text(json.dumps(_summary(survivors)))
    doc = tmp_path / "testing.md"
    doc.write_text(DOC)
    with pytest.raises(SystemExit) as info:
        mutation_report.main(
            ["--summary", str(tmp_path / "summary.json"), "--doc", str(doc), "--check"]
        )
    assert info.value.code == 1  # two survivors have no disposition yet
    text = doc.read_text()
    # 54 run, 1 equivalent: (50 killed + 1 timeout) / 53
    assert "| 54 | 54 | 51 | 3 | 1 | 0 | 0 | 96.2 % | 12 s |" in text
    assert (
        "| `m.x_f__mutmut_1` | `x = a \\| b` → `x = a & b` | equivalent: the same value |" in text
    )
    assert "| `m.x_f__mutmut_2` | `x = a \\| b` → `x = a & b` | **no disposition yet** |" in text
    assert "m.x_f__mutmut_2: no disposition" in capsys.readouterr().err
    assert "old" not in text


def test_a_low_score_is_reported():
    row = _summary({})["modules"][0] | {"killed": 40, "timeout": 0}
    assert mutation_report.failures({"modules": [row]}, {}) == [
        "metrics/confusion.py: score 74.1 % < 90 %"
    ]
