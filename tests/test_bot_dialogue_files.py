"""Bot files (YAML schema, CSV FAQ, clear errors), the misses log and its grouping, the bot CLI."""
import io
import json
import pathlib
import textwrap

import pytest

from engine import cli
from engine.bot import misses
from engine.bot.botfile import BotError, check_bot, load_bot
from engine.bot.dialogue import Dialogue

REPO = pathlib.Path(__file__).resolve().parents[1]
CITY = REPO / "ivr_flows" / "bots" / "city_hotline.yaml"

MINIMAL = """\
name: mini
subject: 社保
greeting: 您好
intents:
  human: {keywords: [转人工], then: human}
faq:
  - {id: card, category: 社保卡, question: 社保卡丢了怎么补办, answer: 到银行网点补办。}
"""


def write(tmp_path, text, name="bot.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path, text, name="bot.yaml"):
    bot, problems = check_bot(write(tmp_path, text, name))
    assert bot is None
    return problems


def test_minimal_bot_loads_with_defaults(tmp_path):
    bot = load_bot(write(tmp_path, MINIMAL))
    assert bot.name == "mini" and bot.language == "zh" and bot.asr.mode == "free"
    assert bot.asr.grammar is None and bot.asr.no_speech_seconds == 6.0
    assert bot.asr.vad.end_silence_ms == 500
    assert bot.limits["max_misses"] == 3 and "reprompt" in bot.messages


def test_yaml_syntax_error_has_file_line_column(tmp_path):
    problems = problems_of(tmp_path, MINIMAL + "faq: [unclosed\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'bot.yaml'}:") and "YAML" in problems[0]


def test_schema_errors_point_at_the_line(tmp_path):
    text = MINIMAL.replace("greeting: 您好\n", "greeting: 您好\nlimits: {max_misses: 0}\nsurprise: 1\n")
    problems = problems_of(tmp_path, text)
    assert len(problems) == 2
    assert f"{tmp_path / 'bot.yaml'}:4:10: limits.max_misses must be at least 1, not 0" in problems
    assert any(p.startswith(f"{tmp_path / 'bot.yaml'}:5:1: unknown key 'surprise'; allowed keys: name, ")
               for p in problems)


def test_misspelt_keys_and_choices_get_did_you_mean(tmp_path):
    text = MINIMAL.replace("greeting: 您好\n", "greetng: 您好\nlimits: {on_unknwn: human, after_silence: hman}\n")
    problems = [p.replace(str(tmp_path / "bot.yaml"), "F") for p in problems_of(tmp_path, text)]
    assert any(p.startswith("F:3:1: unknown key 'greetng' (did you mean 'greeting'?)") for p in problems), problems
    assert any(p.startswith("F:4:10: unknown key 'on_unknwn' in limits (did you mean 'on_unknown'?)") for p in problems)
    assert any(p.startswith("F:4:28: limits.after_silence is the text 'hman' (did you mean 'human'?); allowed: done, human")
               for p in problems), problems
    assert not any("needs the key 'greeting'" in p for p in problems)    # said once, as the misspelling


def test_missing_required_keys_and_wrong_types(tmp_path):
    problems = problems_of(tmp_path, "name: x\nfaq: {a: 1}\n")
    text = "\n".join(problems)
    assert "the file needs the key 'subject'" in text and "the file needs the key 'greeting'" in text
    assert "faq must be a list, not a mapping" in text
    for raw in ("is a required property", "is not of type"):       # jsonschema's words, not ours
        assert raw not in text


def test_semantic_errors(tmp_path):
    text = (MINIMAL + textwrap.dedent("""\
          - {id: card, category: 社保卡, question: 又一个, answer: 重复的编号。}
        tasks:
          ask_id:
            slots:
              - {name: id, type: id_number, prompt: 请说号码, confirm: "您说的是{number}"}
            reply: "好的{nothing}"
        messages:
          off_topic: "本热线只受理{topic}"
        asr: {mode: grammar, vad: {end_silence_ms: -5, bogus: 1}}
        """)).replace("intents:\n  human: {keywords: [转人工], then: human}\n",
                     "intents:\n  human: {examples: [人工], then: human}\n  q: {examples: [查], then: task:nope}\n")
    problems = "\n".join(problems_of(tmp_path, text))
    assert "faq id 'card' is also used at" in problems
    assert "unknown placeholder(s) {number}; allowed: {value}" in problems
    assert "must read the value back: put {value} in it" in problems
    assert "unknown placeholder(s) {nothing}" in problems
    assert "unknown placeholder(s) {topic}; allowed: {subject}" in problems
    assert "grammar mode needs asr.grammar" in problems
    assert "vad: unknown setting(s) bogus" in problems
    assert "then: human is acted on by keywords only" in problems
    assert "no task 'nope'" in problems
    for line in problems.splitlines():      # every problem says where
        assert line.startswith(str(tmp_path / "bot.yaml") + ":")


def test_a_bot_without_a_human_intent_is_refused(tmp_path):
    text = MINIMAL.replace("  human: {keywords: [转人工], then: human}\n", "  bye: {keywords: [再见], then: done}\n")
    assert any("no intent hands off to a human" in p for p in problems_of(tmp_path, text))


def test_non_chinese_bot_must_give_its_messages(tmp_path):
    text = MINIMAL.replace("name: mini\n", "name: mini\nlanguage: ko\n")
    problems = "\n".join(problems_of(tmp_path, text))
    assert "language 'ko' has no default messages: give reprompt" in problems
    assert "has no default 'yes' answers" in problems


def test_faq_from_csv_and_yaml_files(tmp_path):
    (tmp_path / "more.csv").write_text(
        "\ufeffid,category,question,answer,alternates\n"
        "fund,公积金,公积金怎么提取,在公积金中心APP申请。,公积金能取出来吗|怎么取公积金\n",
        encoding="utf-8")
    write(tmp_path, "faq:\n  - {id: pass, category: 户籍, question: 护照怎么办理, answer: 到出入境窗口办理。}\n",
          "more.yaml")
    bot = load_bot(write(tmp_path, MINIMAL + "faq_files: [more.csv, more.yaml]\n"))
    assert set(bot.faq) == {"card", "fund", "pass"}
    assert bot.faq["fund"].alternates == ("公积金能取出来吗", "怎么取公积金")
    assert bot.faq["fund"].where == f"{tmp_path / 'more.csv'}:2"
    dialogue = Dialogue(bot)
    dialogue.start()
    assert dialogue.on_text("我的公积金能不能取出来", 0.9).intent == "faq:fund"


def test_bad_csv_rows_are_reported_with_their_line(tmp_path):
    (tmp_path / "bad.csv").write_text(
        "id,category,question,answer\n"
        "a,社保,问题一,答案一\n"
        "b,社保,,答案二\n"
        "c,社保,问题三,答案,多了一格\n", encoding="utf-8")
    (tmp_path / "cols.csv").write_text("id,question\nx,y\n", encoding="utf-8")
    problems = problems_of(tmp_path, MINIMAL + "faq_files: [bad.csv, cols.csv, missing.csv]\n")
    text = "\n".join(problems)
    assert f"{tmp_path / 'bad.csv'}:3: empty question" in text
    assert f"{tmp_path / 'bad.csv'}:4: more cells than columns" in text
    assert f"{tmp_path / 'cols.csv'}:1: missing column(s) category, answer" in text
    assert "faq_files.2: no such file" in text


def test_load_bot_raises_with_every_problem(tmp_path):
    with pytest.raises(BotError) as err:
        load_bot(write(tmp_path, "name: x\n"))
    assert len(err.value.problems) == 2


def test_sample_bots_lint_clean():
    for name in ("city_hotline.yaml", "ko_test.yaml"):
        bot, problems = check_bot(REPO / "ivr_flows" / "bots" / name)
        assert problems == [] and bot is not None


# --- misses ------------------------------------------------------------------------------------

def test_misses_are_logged_and_grouped_by_similarity(tmp_path):
    bot = load_bot(CITY)
    asked = ["社保卡可以坐地铁吗", "社保卡能不能乘坐地铁", "用社保卡坐地铁行不行",
             "今天天气怎么样", "明天的天气怎么样",
             "医保报销比例是多少"]
    for i, text in enumerate(asked):
        dialogue = Dialogue(bot, misses_dir=tmp_path, call_uuid=f"call-{i}")
        dialogue.start()
        turn = dialogue.on_text(text, 0.9)
        if turn.reason == "offer":
            dialogue.on_text("都不是", 0.9)
    records, problems = misses.read(tmp_path)
    assert problems == [] and [r["text"] for r in records] == asked
    assert {r["call"] for r in records} == {f"call-{i}" for i in range(len(asked))}
    groups = misses.group(records)
    assert [g["count"] for g in groups] == [3, 2, 1]
    assert set([groups[0]["text"]] + groups[0]["examples"]) == set(asked[:3])
    assert set([groups[1]["text"]] + groups[1]["examples"]) == set(asked[3:5])


def test_misses_cli_lists_groups_and_reports_bad_lines(tmp_path, capsys):
    lines = [{"at": 1, "bot": "b", "lang": "zh", "kind": "unknown", "text": t}
             for t in ["社保卡可以坐地铁吗", "社保卡能不能坐地铁", "护照怎么办", "你好", "你好"]]
    (tmp_path / "b.misses.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n", encoding="utf-8")
    assert cli.main(["bot", "misses", "--dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines() if line[:5].strip().isdigit()]
    assert rows[0].split()[0] == "2" and "坐地铁" in rows[0]
    assert rows[1].split()[0] == "2" and "你好" in rows[1]      # stop words only: same text
    assert rows[2].split()[0] == "1" and "护照怎么办" in rows[2]
    assert "b.misses.jsonl:6:" in err
    assert cli.main(["bot", "misses", "--dir", str(tmp_path), "--json", "--top", "1"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert len(groups) == 1 and groups[0]["count"] == 2


def test_a_miss_that_cannot_be_written_does_not_break_the_dialogue(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    dialogue = Dialogue(load_bot(CITY), misses_dir=blocker / "sub")
    dialogue.start()
    assert dialogue.on_text("今天天气怎么样", 0.9).reason == "off_topic"


# --- chat and lint ------------------------------------------------------------------------------

def test_chat_by_stdin(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("社保卡弄丢了要怎么补\n\n我想问一下公积金\n#2\n转人工\n"))
    assert cli.main(["bot", "chat", str(CITY), "--transcript"]) == 0
    out = capsys.readouterr().out
    assert "bot: 社保卡丢失请先通过掌上12333" in out
    assert "[reprompt]" in out and "[offer]" in out
    assert "bot: 本人及配偶在本市无自有住房" in out          # pick 2 by key: 租房提取
    assert "[asked_human] exit=human intent=faq:fund_withdraw_rent" in out
    transcript = json.loads(out[out.index("\n[") + 1:])
    assert [t["text"] for t in transcript if t["who"] == "caller"] == [
        "社保卡弄丢了要怎么补", "我想问一下公积金", "2", "转人工"]


def test_chat_stops_at_end_of_input_and_refuses_a_broken_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("#x\n"))
    assert cli.main(["bot", "chat", str(CITY)]) == 0
    out = capsys.readouterr().out
    assert "not keys: 'x'" in out and "(end of input)" in out
    assert cli.main(["bot", "chat", str(write(tmp_path, "name: x\n"))]) == 1         # a broken file: a failure (1), not a usage error (2)
    assert "the file needs the key 'subject'" in capsys.readouterr().err


def test_lint_cli(tmp_path, capsys):
    assert cli.main(["bot", "lint", str(REPO / "ivr_flows" / "bots")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "ok"
    bad = write(tmp_path, MINIMAL.replace("subject: 社保\n", ""))
    assert cli.main(["bot", "lint", str(bad)]) == 1
    assert f"{bad}:1:1: the file needs the key 'subject'" in capsys.readouterr().out


def test_empty_files_are_problems_not_empty_bots(tmp_path):
    assert problems_of(tmp_path, "") == [f"{tmp_path / 'bot.yaml'}:1:1: a bot file is a mapping "
                                          "(name, subject, greeting, intents, faq...)"]
    write(tmp_path, "", "empty.yaml")
    problems = problems_of(tmp_path, MINIMAL + "faq_files: [empty.yaml]\n")
    assert problems == [f"{tmp_path / 'empty.yaml'}:1:1: empty FAQ file (a list of entries, or faq: [...])"]
