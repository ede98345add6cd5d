"""Rules name labels the models report: a typo or a rename target is a mistake said at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hook.errors import ConfigError
from hook.rules.ruleset import Rules, RulesFile
from tests.factories import write
from tests.procs import hook_cli as cli

MODEL_LABELS = {"person", "car", "dog", "bicycle", "traffic light"}


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        (
            '[[camera]]\nmatch = "*"\nlabels = ["persn"]\n',
            3,
            "camera[0].labels",
            "'persn' is not a label the model reports; did you mean 'person'?",
        ),
        (
            '[[camera]]\nmatch = "*"\nrename = { person = "human" }\nlabels = ["human"]\n',
            4,
            "camera[0].labels",
            "labels are matched before renaming",
        ),
        (
            '[[camera]]\nmatch = "a"\n\n[[camera]]\nmatch = "b"\nmin_score = { cart = 0.5 }\n',
            6,
            "camera[1].min_score",
            "'cart' is not a label the model reports; did you mean 'car'?",
        ),
        (
            '[[camera]]\nmatch = "*"\nrename = { kat = "cat" }\n',
            3,
            "camera[0].rename",
            "'kat' is not a label the model reports; the model's 5 labels are: bicycle, car, dog, "
            "person, traffic light",
        ),
    ],
)
def test_labels_the_model_never_reports_are_named_by_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, words: str
) -> None:
    path = write(tmp_path / "rules.toml", text)
    rules = Rules.load(path)  # valid TOML and shapes: only the model knows the names
    with pytest.raises(ConfigError) as caught:
        rules.check_labels(MODEL_LABELS)
    assert str(caught.value).startswith(f"{path}:{line}: {key}: "), caught.value
    assert words in str(caught.value)
    with pytest.raises(ConfigError):
        RulesFile.open(path, known=MODEL_LABELS)


def test_a_changed_file_naming_an_unknown_label_keeps_the_old_rules(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\nlabels = ["dog"]\n')
    held = RulesFile.open(path, known=MODEL_LABELS)
    write(path, '[[camera]]\nmatch = "*"\nlabels = ["dgo"]\n')
    assert held.reload().entries[0].labels == ("dog",)


def test_rules_check_names_a_label_the_models_never_report(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\nlabels = ["persn"]\n')
    done = cli("rules", "check", str(path))
    assert done.returncode == 2
    assert f"{path}:3: camera[0].labels: 'persn' is not a label the model reports" in done.stderr
    good = write(tmp_path / "good.toml", '[[camera]]\nmatch = "*"\nlabels = ["person"]\n')
    broken = cli("rules", "check", str(good), HOOK_MODEL="/nowhere.onnx")  # no model to ask
    assert broken.returncode == 0 and "label names not checked" in broken.stdout
    assert cli("rules", "check", str(good), HOOK_LEASE_SECONDS="x").returncode == 0
