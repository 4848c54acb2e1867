"""The command line is a stable interface: JSON parses, same seed -> same output."""

import json
import subprocess
import sys

import pytest

from mtl_teach.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_teach", *args], capture_output=True, text=True, timeout=120)


def test_train_json_parses_and_is_reproducible():
    first = run_cli("train", "--strategy", "separate_backward", "--steps", "30", "--json")
    second = run_cli("train", "--strategy", "separate_backward", "--steps", "30", "--json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    out = json.loads(first.stdout)
    assert out["config"]["strategy"] == "separate_backward" and out["steps_done"] == 30
    assert set(out["final_losses"]) == {"classification", "regression"}


def test_train_text_summary(capsys):
    assert main(["train", "--steps", "20", "--alpha", "0.9", "--beta", "0.1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("weighted_sum: step 20/20: classification")


def test_compare_writes_one_figure(tmp_path, capsys):
    png = tmp_path / "compare.png"
    code = main(["compare", "--strategies", "weighted_sum", "alternating_steps", "--steps", "20", "--plot", str(png)])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["weighted_sum", "alternating_steps"]


def test_compare_json_has_one_entry_per_strategy(capsys):
    main(["compare", "--strategies", "weighted_sum", "backward_list", "--steps", "10", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["weighted_sum"]["final_losses"] == out["backward_list"]["final_losses"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--lr", "-1"], "lr=-1.0 is not allowed"),
        (["train", "--strategy", "nope"], "strategy='nope' is not allowed"),
        (["train", "--alpha", "-2"], "alpha=-2.0 is not allowed"),
    ],
)
def test_bad_values_exit_2_with_a_clear_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_diverging_run_exits_1_and_says_so():
    result = run_cli("train", "--optimizer", "sgd", "--lr", "1000", "--regression-scale", "100", "--steps", "50")
    assert result.returncode == 1
    assert "diverged: the loss became NaN/inf at step" in result.stdout


def test_a_run_that_diverges_without_a_nan_loss_exits_1_with_valid_json():
    """Issue 9's repro: the minibatch losses stay finite but the final parameters overflow."""
    result = run_cli("train", "--optimizer", "sgd", "--lr", "30", "--steps", "3", "--json")
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)  # strict JSON: Infinity would not parse as a number here
    assert out["diverged_at"] == 3 and out["metrics"] == {} and "Infinity" not in result.stdout


def test_a_diverging_gradient_method_exits_1_and_compare_keeps_the_other_results(capsys):
    code = main(["compare", "--strategies", "imtl_g", "mgda", "weighted_sum", "--optimizer", "sgd", "--lr", "100"])
    assert code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["imtl_g", "mgda", "weighted_sum"]
    assert all("diverged" in line for line in lines[:2])


@pytest.mark.parametrize(
    "plot, message",
    [
        ("", "must name a file"),
        (".", "must name a file"),
        ("curves.txt", "must end in one of .png, .pdf, .svg"),
        ("no/such/folder/curves.png", "does not exist"),
    ],
)
def test_a_bad_plot_path_exits_2_before_training(plot, message, capsys, monkeypatch):
    trained = []
    monkeypatch.setattr("mtl_teach.cli.train", lambda config: trained.append(config))
    assert main(["train", "--steps", "5", "--plot", plot]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert trained == []  # refused before any training


def test_an_unwritable_plot_folder_exits_2(tmp_path, capsys, monkeypatch):
    # CI runs as root, who may write anywhere; so the permission answer is simulated.
    monkeypatch.setattr("mtl_teach.cli.os.access", lambda path, mode: False)
    assert main(["train", "--steps", "5", "--plot", str(tmp_path / "c.png")]) == 2
    assert "no permission to write there" in capsys.readouterr().err


def test_benchmark_writes_the_table_in_markdown_and_json_and_the_figure(tmp_path, capsys):
    out = tmp_path / "results"  # made if missing
    args = ["benchmark", "--seeds", "2", "--out", str(out), "--steps", "10", "--problems", "metres"]
    assert main([*args, "--methods", "weighted_sum", "rlw"]) == 0
    table = (out / "benchmark.md").read_text()
    assert table.startswith("| method | family | metres | mean |") and "| rlw | weighting |" in table
    data = json.loads((out / "benchmark.json").read_text())
    assert data["seeds"] == [0, 1] and data["steps"] == 10 and len(data["runs"]) == 6
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert table in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "0"], "seeds=0 is not allowed"),
        (["--problems", "kilometres"], "problem 'kilometres' is not allowed"),
        (["--methods", "sum_of_everything"], "method 'sum_of_everything' is not allowed"),
        (["--steps", "-5"], "steps=-5 is not allowed"),
    ],
)
def test_benchmark_bad_values_exit_2_before_training(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mtl_teach.benchmark.run_benchmark", lambda *a, **k: pytest.fail("trained anyway"))
    assert main(["benchmark", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_benchmark_out_must_be_a_folder(tmp_path, capsys):
    afile = tmp_path / "x.md"
    afile.write_text("")
    assert main(["benchmark", "--out", str(afile)]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err
