"""Rules per camera: each key applied, first match wins, zones by where objects stand, renames,
describe(), RulesFile reading a changed file again, and `rules check` through the CLI."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pytest

from hook.detect.detection import Detection
from hook.detect.thresholds import Thresholds
from hook.errors import ConfigError
from hook.rules.ruleset import QUIET_SECONDS, CameraRule, Rules, RulesFile, describe
from hook.task import Dropped
from tests.factories import write
from tests.procs import hook_cli as cli

SIZE = (640, 480)  # not square, so x and y fractions differ
KEY = "2017-05-05T01:31:13.738647"
BAND = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.25), (0.0, 0.25))  # the bottom quarter: y_px 360..480


def box(label: str, score: float = 0.9, x: float = 320, bottom: float = 300) -> Detection:
    """A 64 x 96 px box whose bottom-centre is at (x, bottom) in pixels."""
    return Detection(label, score, (x - 32, bottom - 96, x + 32, bottom))


def apply(rule: CameraRule, *found: Detection) -> tuple[list[Detection], list[str]]:
    kept, dropped = Rules((rule,)).apply("cam", KEY, found, SIZE)
    return kept, [d.why for d in dropped]


def test_no_rules_keep_everything() -> None:
    found = [box("person"), box("dog", 0.01)]
    assert Rules().apply("front", KEY, found, SIZE) == (found, [])
    assert Rules().entry_for("front") is None


def test_a_camera_no_entry_fits_is_left_as_it_is() -> None:
    rules = Rules((CameraRule(match="front*", labels=()),))
    found = [box("person")]
    assert rules.apply("back yard", KEY, found, SIZE) == (found, [])
    assert rules.apply(None, KEY, found, SIZE) == (found, [])


def test_the_first_fitting_entry_applies_and_star_is_the_default() -> None:
    front, door, default = (
        CameraRule(match="front*"),
        CameraRule(match="front door"),
        CameraRule(match="*"),
    )
    rules = Rules((front, door, default))
    assert rules.entry_for("front door") is front  # door is never reached: front fits first
    assert rules.entry_for("front yard") is front
    assert rules.entry_for("garage") is default
    assert rules.entry_for(None) is default  # "*" fits a camera with no name
    assert rules.entry_for("") is default
    assert Rules((door, front)).entry_for("front door") is door


def test_match_is_case_sensitive_and_shell_style() -> None:
    rules = Rules((CameraRule(match="cam-[0-9]?"), CameraRule(match="Front*")))
    assert rules.entry_for("cam-12") is rules.entries[0]
    assert rules.entry_for("cam-x1") is None
    assert rules.entry_for("front door") is None
    assert rules.entry_for("Front door") is rules.entries[1]
    assert Rules((CameraRule(match="front*"),)).entry_for(None) is None


def test_labels_keep_only_the_named_ones() -> None:
    kept, why = apply(
        CameraRule(match="*", labels=("person", "car")), box("person"), box("dog"), box("car")
    )
    assert [d.label for d in kept] == ["person", "car"]
    assert why == ["not in labels"]
    assert apply(CameraRule(match="*", labels=()), box("person")) == ([], ["not in labels"])


def test_rename_comes_after_the_labels_filter() -> None:
    rule = CameraRule(match="*", labels=("person",), rename={"person": "human", "dog": "pet"})
    kept, dropped = Rules((rule,)).apply("cam", KEY, [box("person"), box("human")], SIZE)
    assert kept == [Detection("human", 0.9, box("person").box)]
    assert dropped == [Dropped(KEY, "human", 0.9, "not in labels")]  # named as detected
    kept, _ = apply(CameraRule(match="*", rename={"dog": "pet"}), box("dog"), box("cat"))
    assert [d.label for d in kept] == ["pet", "cat"]


def test_min_score_drops_lower_scores_and_keeps_equal_ones() -> None:
    kept, why = apply(CameraRule(match="*", min_score=0.5), box("a", 0.5), box("b", 0.49))
    assert [d.label for d in kept] == ["a"]
    assert why == ["min_score 0.5"]


def test_min_score_per_label_leaves_other_labels_unlimited() -> None:
    rule = CameraRule(match="*", min_score={"person": 0.6, "car": 0.4}, rename={"person": "p"})
    kept, dropped = Rules((rule,)).apply(
        "cam",
        KEY,
        [box("person", 0.59), box("person", 0.6), box("car", 0.39), box("dog", 0.01)],
        SIZE,
    )
    assert [(d.label, d.score) for d in kept] == [("p", 0.6), ("dog", 0.01)]
    assert dropped == [
        Dropped(KEY, "person", 0.59, "min_score 0.6"),
        Dropped(KEY, "car", 0.39, "min_score 0.4"),
    ]


def test_the_thresholds_drop_quietly_unless_the_cameras_entry_sets_the_labels_own() -> None:
    """HOOK_MIN_SCORE / HOOK_LABEL_SCORES make no candidate of a low score (no `dropped` line),
    and a camera's own min_score for a label replaces them: a lower one keeps more, a higher
    one drops what the thresholds kept, saying so."""
    limits = Thresholds(0.35, {"person": 0.3})
    found = [box("person", 0.32), box("dog", 0.32), box("cat", 0.5), box("car", 0.25)]
    assert Rules().apply("cam", KEY, found, SIZE, limits) == ([found[0], found[2]], [])
    lower = Rules((CameraRule(match="*", min_score={"car": 0.22, "cat": 0.6}),))
    kept, dropped = lower.apply("cam", KEY, found, SIZE, limits)
    assert kept == [found[0], found[3]]  # the car at 0.25 is kept at this camera's 0.22
    assert [(d.label, d.why) for d in dropped] == [("cat", "min_score 0.6")]
    everything = Rules((CameraRule(match="*", min_score=0.3),))  # every label at 0.3 here
    kept, dropped = everything.apply("cam", KEY, found, SIZE, limits)
    assert kept == found[:3] and dropped == []  # the car is under both: no candidate
    other = Rules((CameraRule(match="back*", min_score=0.1),))  # fits no "cam": thresholds
    assert other.apply("cam", KEY, found, SIZE, limits) == ([found[0], found[2]], [])


def test_min_area_is_a_fraction_of_the_image_area() -> None:
    exact = 64 * 96 / (640 * 480)  # 0.02
    kept, why = apply(
        CameraRule(match="*", min_area=exact), box("a"), Detection("b", 0.9, (0, 0, 64, 95))
    )
    assert [d.label for d in kept] == ["a"]
    assert why == [f"min_area {exact:g}"]


def test_ignore_zones_test_where_the_object_stands() -> None:
    rule = CameraRule(match="*", ignore_zones=(((0.9, 0.9), (1.0, 0.9), (1.0, 1.0)), BAND))
    head_in_zone = box("tall", bottom=359)  # its feet are just above the band
    feet_in_zone = box("short", bottom=400)
    kept, why = apply(rule, head_in_zone, feet_in_zone, Detection("wide", 0.9, (0, 300, 640, 470)))
    assert [d.label for d in kept] == ["tall"]
    assert why == ["ignore_zones[1]", "ignore_zones[1]"]  # the index of the zone it stands in


@pytest.mark.parametrize(
    ("feet", "inside"),
    [
        ((320, 360), True),  # on the band's top edge (y = 0.25)
        ((0, 360), True),  # on its top-left vertex
        ((640, 480), True),  # on its bottom-right vertex (the image's corner)
        ((320, 359.9), False),
    ],
)
def test_zone_edges_and_vertices_count_as_inside(feet: tuple[float, float], inside: bool) -> None:
    x, y = feet
    found = Detection("person", 0.9, (x - 10, y - 50, x + 10, y))
    _, why = apply(CameraRule(match="*", ignore_zones=(BAND,)), found)
    assert why == (["ignore_zones[0]"] if inside else [])
    _, why = apply(CameraRule(match="*", only_zones=(BAND,)), found)
    assert why == ([] if inside else ["outside only_zones"])


def test_only_zones_keep_objects_standing_in_any_of_them() -> None:
    left = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    rule = CameraRule(match="*", only_zones=(left, BAND))
    kept, why = apply(
        rule,
        box("left", x=100),
        box("right low", x=600, bottom=450),
        box("right high", x=600, bottom=100),
    )
    assert [d.label for d in kept] == ["left", "right low"]
    assert why == ["outside only_zones"]


def test_checks_run_in_order_and_the_first_failed_one_is_why() -> None:
    rule = CameraRule(
        match="*",
        labels=("person",),
        min_score=0.5,
        min_area=0.01,
        ignore_zones=(BAND,),
        only_zones=(((0, 0), (0.1, 0), (0, 0.1)),),
    )
    tiny = (0, 470, 10, 480)  # under min_area, standing in the band, outside only_zones
    found = [
        Detection("dog", 0.1, tiny),
        Detection("person", 0.1, tiny),
        Detection("person", 0.9, tiny),
        box("person", bottom=400),
        box("person"),
    ]
    _, why = apply(rule, *found)
    assert why == [
        "not in labels",
        "min_score 0.5",
        "min_area 0.01",
        "ignore_zones[0]",
        "outside only_zones",
    ]


def edit(path: Path, text: str) -> None:
    """Change the file as an operator would, then leave it alone past the quiet time."""
    path.write_text(text)
    settled = time.time_ns() - int(2 * QUIET_SECONDS * 1e9)
    os.utime(path, ns=(settled, settled))


VALID = """\
[[camera]]
match = "front*"
labels = ["person", "car"]
min_score = { person = 0.6 }
min_area = 0.002
rename = { person = "human" }
ignore_zones = [ [[0.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 0.3]] ]

[[camera]]
match = "front door"

[[camera]]
match = "yard"
only_zones = [ [[0.5, 0], [1, 0], [1, 1], [0.5, 1]] ]

[[camera]]
match = "*"
min_score = 0.5
"""


def test_describe_says_what_each_entry_does(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", VALID)
    assert describe(Rules.load(path)).splitlines()[2:] == [
        'camera[0] (line 1): match "front*"',
        "  labels: reports only person, car",
        "  min_score: drops person below 0.6; other labels at HOOK_MIN_SCORE or HOOK_LABEL_SCORES",
        "  min_area: drops boxes under 0.002 of the image area",
        "  rename: reports person as human (the other keys name labels as detected)",
        "  ignore_zones[0]: drops objects standing in (0, 0) (1, 0) (1, 0.3) (0, 0.3)",
        'camera[1] (line 9): match "front door" - never applies: camera[0] (match "front*") '
        "fits first",
        "  keeps every detection",
        'camera[2] (line 12): match "yard"',
        "  only_zones: drops objects standing in none of these:",
        "    [0] (0.5, 0) (1, 0) (1, 1) (0.5, 1)",
        'camera[3] (line 16): match "*", every camera the entries above miss (also one with '
        "no name)",
        "  min_score: drops detections scoring below 0.5",
    ]
    assert describe(Rules.load(path)).startswith(f"{path}: 4 [[camera]] entries; the first whose")


def test_describe_names_entries_that_never_apply_and_cameras_no_entry_fits() -> None:
    text = describe(
        Rules((CameraRule(match="*"), CameraRule(match="gate"), CameraRule(match="gate")))
    )
    assert 'camera[1]: match "gate" - never applies: camera[0] (match "*") fits first' in text
    text = describe(Rules((CameraRule(match="gate"), CameraRule(match="gate"))))
    assert 'camera[1]: match "gate" - never applies: camera[0] (match "gate") fits first' in text
    assert text.endswith('a camera no entry fits keeps every detection (no "*" entry)')
    assert describe(Rules()) == "no [[camera]] entries: every camera keeps every detection"


def test_rules_file_without_a_path_has_no_rules() -> None:
    held = RulesFile.open(None)
    assert held.current() == Rules()
    assert held.reload() == Rules()


def test_rules_file_refuses_an_invalid_file_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules.toml:1: camera\[0\]: has no match"):
        RulesFile.open(write(tmp_path / "rules.toml", "[[camera]]\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        RulesFile.open(tmp_path / "absent.toml")


def test_rules_file_reads_a_changed_file_again(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\n')
    held = RulesFile.open(path)
    first = held.current()
    assert [e.match for e in first.entries] == ["*"]
    assert held.current() is first  # unchanged: not read again
    edit(path, '[[camera]]\nmatch = "front*"\n[[camera]]\nmatch = "*"\n')
    assert [e.match for e in held.current().entries] == ["front*", "*"]


def test_rules_file_keeps_the_old_rules_when_the_new_file_is_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hook.rules.ruleset")
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\n')
    held = RulesFile.open(path)
    good = held.current()
    edit(path, '[[camera]]\nmatch = "*"\nmin_score = 2\n')
    assert held.current() is good
    assert held.current() is good  # asked again: no second warning for the same change
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "rules file changed but is invalid; keeping the rules in force (1 entry): "
        f"{path}:3: camera[0].min_score: must be a table of label = score, or a number from "
        "0 to 1, not 2"
    ]
    edit(path, '[[camera]]\nmatch = "*"\nmin_score = 0.2\n')
    assert held.current().entries[0].min_score == 0.2  # fixed: the new rules are in force


def test_rules_file_keeps_the_old_rules_when_the_file_is_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\n')
    held = RulesFile.open(path)
    good = held.current()
    path.unlink()
    assert held.current() is good
    assert held.current() is good
    gone = [r.getMessage() for r in caplog.records if "is gone" in r.getMessage()]
    assert gone == [f"rules file {path} is gone; keeping the rules in force (1 entry)"]
    edit(path, '[[camera]]\nmatch = "back"\n')
    assert held.current().entries[0].match == "back"


def test_reload_reads_the_file_even_when_its_stamp_did_not_change(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "aaaa"\n')
    held = RulesFile.open(path)
    before = os.stat(path)
    write(path, '[[camera]]\nmatch = "bbbb"\n')  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    assert held.current().entries[0].match == "aaaa"
    assert held.reload().entries[0].match == "bbbb"
    assert held.current().entries[0].match == "bbbb"


def test_rules_file_is_safe_to_share_between_threads(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\n')
    held = RulesFile.open(path)
    seen: list[Rules] = []

    def ask() -> None:
        for _ in range(300):
            seen.append(held.current())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(20):
        write(path, f'[[camera]]\nmatch = "cam{n}"\n' + "#" * n)  # truncates, then writes
    for thread in threads:
        thread.join()
    assert len(seen) == 1200
    assert all(len(rules.entries) == 1 for rules in seen)  # never a half-written file's
    time.sleep(QUIET_SECONDS)
    assert held.current().entries[0].match == "cam19"


def test_a_file_being_written_is_read_once_it_settles(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", '[[camera]]\nmatch = "*"\n')
    held = RulesFile.open(path)
    with path.open("w") as out:  # emptied, as a shell's `>` does before writing
        out.flush()
        assert held.current().entries[0].match == "*"  # an empty file just now: not yet
        out.write('[[camera]]\nmatch = "new"\n')
    assert held.current().entries[0].match == "*"
    time.sleep(QUIET_SECONDS)
    assert held.current().entries[0].match == "new"


def test_rules_check_prints_what_each_entry_does(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", VALID)
    done = cli("rules", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == describe(Rules.load(path)) + "\n"
    from_env = cli("rules", "check", HOOK_RULES=str(path))
    assert (from_env.returncode, from_env.stdout) == (0, done.stdout)


def test_rules_check_of_an_invalid_file_exits_2_naming_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "rules.toml", VALID.replace("min_area = 0.002", "min_area = 2"))
    done = cli("rules", "check", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"hook rules: {path}:5: camera[0].min_area: must be a number from 0 to 1, not 2\n"
    )


def test_rules_check_without_a_file_exits_2_and_says_so(tmp_path: Path) -> None:
    done = cli("rules", "check")
    assert done.returncode == 2
    assert "no rules file: give one (rules check FILE) or set HOOK_RULES" in done.stderr
    missing = cli("rules", "check", HOOK_RULES=str(tmp_path / "absent.toml"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'absent.toml'}: cannot read the rules file" in missing.stderr
