"""The language of the package's messages: found without a code cell, English by default."""

import sys
import types

import pytest

from mtl_teach import i18n
from mtl_teach.exercises import check


@pytest.fixture(autouse=True)
def _clean_language(monkeypatch, tmp_path):
    """Each test starts in an English folder, with no language set."""
    monkeypatch.delenv("MTL_TEACH_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


def test_english_by_default():
    assert i18n.language() == "en" and i18n.tr("Correct!") == "Correct!"


def test_a_notebook_in_the_zh_cn_folder_reads_chinese(tmp_path, monkeypatch):
    (tmp_path / "notebooks" / "zh-CN").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "notebooks" / "zh-CN")  # nbval, nbclient and VS Code start the kernel here
    assert i18n.language() == "zh-CN" and i18n.tr("Correct!") == "正确！"


def test_jupyterlab_session_path_wins_over_the_working_folder(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/zh-CN/01_weighted_sum.ipynb")
    assert i18n.language() == "zh-CN"
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/01_weighted_sum.ipynb")
    assert i18n.language() == "en"


def test_environment_and_explicit_choice_override(monkeypatch):
    monkeypatch.setenv("MTL_TEACH_LANG", "zh-CN")
    assert i18n.language() == "zh-CN"
    i18n.set_language("en")
    assert i18n.language() == "en"
    with pytest.raises(ValueError, match=r"language='fr' is not available; choose one of \['en', 'zh-CN'\]"):
        i18n.set_language("fr")


def test_in_colab_the_notebook_metadata_decides(monkeypatch):
    colab, message = types.ModuleType("google.colab"), types.ModuleType("google.colab._message")
    notebook = {"metadata": {"mtl_teach": {"language": "zh-CN"}}}
    message.blocking_request = lambda request, timeout_sec: {"ipynb": notebook} if request == "get_ipynb" else None
    colab._message = message
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    assert i18n.language() == "zh-CN"
    notebook["metadata"] = {}  # the English edition has no language in its metadata
    assert i18n.language() == "en"


def test_an_untranslated_message_stays_english_and_fields_are_filled():
    i18n.set_language("zh-CN")
    assert i18n.tr("no such message {x}", x=3) == "no such message 3"
    assert i18n.tr("Not yet. {hint}", hint="提示") == "还不对。提示"


def test_check_speaks_the_notebooks_language(capsys):
    i18n.set_language("zh-CN")
    check(2, lambda a: a == 2, "hint")
    check(None, lambda a: a == 2, "hint")
    assert capsys.readouterr().out.splitlines() == [
        "正确！",
        "还没有作答：把 None 换成你的答案，运行那个单元格，再运行这个检查。",
    ]


def test_every_catalog_entry_keeps_the_english_fields():
    import re
    import string

    from mtl_teach.translations import CATALOGS

    for language, catalog in CATALOGS.items():
        for english, translated in catalog.items():
            fields = {name for _, name, _, _ in string.Formatter().parse(english) if name}
            assert fields == {name for _, name, _, _ in string.Formatter().parse(translated) if name}, english
            assert not re.search(r"[\u4e00-\u9fff]", english), f"{language}: a key must be the English text"
