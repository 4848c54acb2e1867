"""check(): what a learner sees for an unanswered, right, wrong or broken answer."""

from mtl_teach.exercises import check


def test_unanswered_right_and_wrong(capsys):
    check(None, lambda a: a == 2, "think of two")
    check(2, lambda a: a == 2, "think of two")
    check(3, lambda a: a == 2, "think of two")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Not answered yet")
    assert lines[1] == "Correct!"
    assert lines[2] == "Not yet. think of two"


def test_an_answer_that_breaks_the_check_is_reported_not_raised(capsys):
    check("a string", lambda a: a + 1 == 2, "a number")
    out = capsys.readouterr().out
    assert out.startswith("Not yet: checking your answer raised TypeError: ") and out.rstrip().endswith("a number")
