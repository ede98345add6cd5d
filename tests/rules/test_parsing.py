"""Reading rules files: every key parsed to its type, and every kind of mistake named by
file, line and key (real files in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hook.errors import ConfigError
from hook.rules.ruleset import CameraRule, Rules

EVERY_KEY = """\
# rules for the test
[[camera]]                 # the first entry whose match fits applies
match = "front*"
labels = ["person", "car"]
min_score = { person = 0.6, car = 0.4 }
min_area = 0.002
rename = { person = "human" }
ignore_zones = [ [[0.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 0.3]] ]
only_zones = [
  [[0, 0], [1, 0], [1, 1]],
]

[[camera]]
match = "*"
min_score = 1
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "rules.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_every_key_is_read_to_its_type(tmp_path: Path) -> None:
    rules = Rules.load(write(tmp_path, EVERY_KEY))
    assert rules.source == tmp_path / "rules.toml"
    assert rules.entries == (
        CameraRule(
            match="front*",
            labels=("person", "car"),
            min_score={"person": 0.6, "car": 0.4},
            min_area=0.002,
            rename={"person": "human"},
            ignore_zones=(((0.0, 0.0), (1.0, 0.0), (1.0, 0.3), (0.0, 0.3)),),
            only_zones=(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)),),
            line=2,
        ),
        CameraRule(match="*", min_score=1.0, line=13),
    )
    assert isinstance(rules.entries[1].min_score, float)


def test_an_empty_file_has_no_entries(tmp_path: Path) -> None:
    assert Rules.load(write(tmp_path, "# nothing yet\n")).entries == ()


def test_entries_written_inline_are_read_too(tmp_path: Path) -> None:
    rules = Rules.load(write(tmp_path, 'camera = [{ match = "*", labels = [] }]\n'))
    assert rules.entries == (CameraRule(match="*", labels=(), line=1),)


def test_entries_with_sub_tables_are_read_too(tmp_path: Path) -> None:
    text = '[[camera]]\nmatch = "porch"\n[camera.rename]\ncar = "vehicle"\n'
    assert Rules.load(write(tmp_path, text)).entries[0].rename == {"car": "vehicle"}


SECOND = '[[camera]]\nmatch = "front*"\nmin_score = 0.5\n\n[[camera]]\nmatch = "*"\n'  # 6 lines

INVALID = [
    # (the file, its line, the key as named, what the message says)
    ('[[camera]]\nmatch = "a"\nmin_score = \n', 3, "min_score", "not valid TOML"),
    ('[[camera]]\nmatch = "a"\nmatch = "b"\n', 3, "match", "not valid TOML"),
    ('[[camera]\nmatch = "a"\n', 1, "[[camera]", "not valid TOML"),
    (
        '[[camera]]\nmatch = "a"\nmin_scor = 0.5\n',
        3,
        "camera[0].min_scor",
        "unknown key (did you mean min_score?",
    ),
    ('[[camera]]\nlabels = ["car"]\n', 1, "camera[0]", "has no match"),
    ('[[camera]]\nmatch = ""\n', 2, "camera[0].match", 'not "" (a string)'),
    ("[[camera]]\nmatch = 3\n", 2, "camera[0].match", "not 3"),
    (
        '[[camera]]\nmatch = "a"\nlabels = "person"\n',
        3,
        "camera[0].labels",
        'must be a list of label names, not "person" (a string)',
    ),
    (
        '[[camera]]\nmatch = "a"\nlabels = ["car", 7]\n',
        3,
        "camera[0].labels[1]",
        "must be a label name, not 7",
    ),
    (
        '[[camera]]\nmatch = "a"\nmin_score = 1.5\n',
        3,
        "camera[0].min_score",
        "must be a table of label = score, or a number from 0 to 1, not 1.5",
    ),
    ('[[camera]]\nmatch = "a"\nmin_score = "high"\n', 3, "camera[0].min_score", '"high"'),
    (
        '[[camera]]\nmatch = "a"\nmin_score = { person = -0.1 }\n',
        3,
        "camera[0].min_score.person",
        "must be a number from 0 to 1, not -0.1",
    ),
    (
        '[[camera]]\nmatch = "a"\nmin_score = { "traffic light" = 2 }\n',
        3,
        'camera[0].min_score."traffic light"',
        "not 2",
    ),
    ('[[camera]]\nmatch = "a"\nmin_area = true\n', 3, "camera[0].min_area", "not true (a boolean)"),
    ('[[camera]]\nmatch = "a"\nrename = "human"\n', 3, "camera[0].rename", "must be a table"),
    (
        '[[camera]]\nmatch = "a"\n[[camera.ignore_zones]]\nx = 1\n',
        3,
        "camera[0].ignore_zones[0]",
        "not a table",
    ),
    (
        '[[camera]]\nmatch = "a"\n[camera.rename]\nperson = ""\n',
        3,
        "camera[0].rename.person",
        "must be a new name",
    ),
    (
        '[[camera]]\nmatch = "a"\nignore_zones = [[0, 0], [1, 0], [1, 1]]\n',
        3,
        "camera[0].ignore_zones[0]",
        "is a point, not a polygon: ignore_zones is a list of",
    ),
    (
        '[[camera]]\nmatch = "a"\nignore_zones = [ [[0, 0], [1, 0]] ]\n',
        3,
        "camera[0].ignore_zones[0]",
        "it has 2",
    ),
    (
        '[[camera]]\nmatch = "a"\nignore_zones = { a = 1 }\n',
        3,
        "camera[0].ignore_zones",
        "must be a list of polygons",
    ),
    (
        '[[camera]]\nmatch = "a"\nonly_zones = [\n  [[0, 0], [1, 0], [1, 1]],\n'
        "  [[0, 0], [1.2, 0], [1, 1]],\n]\n",
        3,
        "camera[0].only_zones[1][1]",
        "must be an [x, y] point, both from 0 to 1 (origin bottom-left), not [1.2, 0]",
    ),
    (
        '[[camera]]\nmatch = "a"\nonly_zones = [ [[0, 0], [0.5], [1, 1]] ]\n',
        3,
        "camera[0].only_zones[0][1]",
        "not [0.5]",
    ),
    (
        '[[camera]]\nmatch = "a"\nonly_zones = [ [[0, 0], [0.5, 0.5], [1, 1]] ]\n',
        3,
        "camera[0].only_zones[0]",
        "its points lie on one line",
    ),
    ('[[camera]]\nmatch = "a"\nonly_zones = []\n', 3, "camera[0].only_zones", "lists no polygon"),
    # in the second entry: the line is the key's in that entry, not the same key in the first
    (
        SECOND.replace('match = "*"', 'match = "*"\nmin_score = 7'),
        7,
        "camera[1].min_score",
        "not 7",
    ),
    (SECOND + "min_aera = 0.1\n", 7, "camera[1].min_aera", "did you mean min_area?"),
    (SECOND.replace('match = "*"\n', ""), 5, "camera[1]", "has no match"),
    ("version = 2\n" + SECOND, 1, "version", "unknown key: the file holds [[camera]] entries"),
    (SECOND + "[defaults]\nmin_score = 0.5\n", 7, "defaults", "unknown table"),
    ("camera = 5\n", 1, "camera", "must be [[camera]] tables"),
    ('[camera]\nmatch = "*"\n', 1, "camera", "must be [[camera]] tables"),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), INVALID)
def test_each_mistake_is_named_by_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Rules.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert problem in message


def test_a_syntax_error_says_where_in_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[camera]]\nmatch = "a"\nmin_area = 0.1.2\n')
    with pytest.raises(ConfigError, match=r"rules.toml:3: min_area: not valid TOML: .*column"):
        Rules.load(path)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "match = front",
            "match: not valid TOML: Invalid value at column 9 of 'match = front'; text takes "
            'quotes: match = "front"',
        ),
        (
            'labels = [person, "car"]',
            "labels: not valid TOML: Invalid value at column 11 of 'labels = [person, \"car\"]'; "
            'text takes quotes: labels = ["person", "car"]',
        ),
        (
            "min_score = 0,5",
            "min_score: not valid TOML: Expected newline or end of document after a statement at "
            "column 14 of 'min_score = 0,5'",
        ),
    ],
)
def test_a_syntax_error_shows_the_line_and_quotes_a_bare_word(
    tmp_path: Path, line: str, said: str
) -> None:
    """ "Invalid value (column 9)" told an operator nothing they could act on."""
    path = write(tmp_path, f"[[camera]]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        Rules.load(path)
    assert str(caught.value) == f"{path}:2: {said}"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=f"^{path}: cannot read the rules file: No such file"):
        Rules.load(path)


def test_a_file_not_in_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'[[camera]]\nmatch = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=f"^{path}:2: not UTF-8 text"):
        Rules.load(path)
