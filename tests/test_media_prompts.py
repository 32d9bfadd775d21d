import dataclasses
import os
import threading
import time
import wave
from pathlib import Path

import gevent
import pytest

from engine.media.prompts import MAX_TEXT_CHARS, PromptRenderer, check_wav, split_sentences, to_pinyin
from engine.settings import default_settings

WELCOME = "您好，欢迎致电12345政务服务便民热线"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def tts(**changes):
    base = default_settings().tts
    return dataclasses.replace(base, **changes)


def counting(renderer):
    """Record every subprocess the renderer starts (argv and stdin)."""
    calls = []
    real_run = renderer._run

    def run(args, stdin=None):
        calls.append((list(args), stdin))
        return real_run(args, stdin)
    renderer._run = run
    return calls


def wav_params(path):
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def no_partial_files(cache_dir):
    files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
    assert all(p.stat().st_size > 44 for p in files), files
    assert not [p for p in Path(cache_dir).iterdir() if p.name.startswith(".")]
    return files


def test_espeak_render_is_8k_mono_16bit_mandarin(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    path = renderer.render(WELCOME)
    rate, channels, width, seconds = wav_params(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 2.5 < seconds < 15
    assert renderer.engine_used == "espeak"
    assert path.parent == tmp_path
    assert no_partial_files(tmp_path) == [path]


def test_pinyin_input_has_tones_and_single_digits():
    text = to_pinyin(WELCOME)
    assert text.startswith("nin2 hao3 , huan1 ying2")
    assert "yi1 er4 san1 si4 wu3" in text  # 12345 read digit by digit, not as a number
    assert "ling2" in to_pinyin("拨打13800138000")


def test_cache_hit_does_not_render_again(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    calls = counting(renderer)
    first = renderer.render(WELCOME)
    assert [c[0][0] for c in calls] == ["espeak-ng", "sox"]
    mtime = first.stat().st_mtime_ns
    again = PromptRenderer(tts(edge_enabled=False), tmp_path)  # a new process: cache on disk
    again_calls = counting(again)
    assert renderer.render(WELCOME) == first == again.render(WELCOME)
    assert len(calls) == 2 and again_calls == []
    assert again.engine_used == "cache:espeak"
    assert first.stat().st_mtime_ns == mtime
    # voice rate is part of the key
    faster = renderer.render(WELCOME, rate=20)
    assert faster != first and wav_params(faster)[3] < wav_params(first)[3]


def test_concurrent_renders_of_one_text_make_one_file(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    calls = counting(renderer)
    jobs = [gevent.spawn(renderer.render, "请稍候，正在为您转接人工服务") for _ in range(6)]
    gevent.joinall(jobs, raise_error=True)
    paths = {job.value for job in jobs}
    assert len(paths) == 1 and len(calls) == 2
    assert wav_params(paths.pop())[:3] == (8000, 1, 2)
    assert len(no_partial_files(tmp_path)) == 1


def test_edge_failure_falls_back_quickly_and_waits_retry_after(tmp_path):
    clock = FakeClock()
    tries = []

    def failing_edge(text, voice, rate, mp3_path, timeout):
        tries.append(text)
        Path(mp3_path).write_bytes(b"")  # as edge-tts does offline
        raise OSError("Cannot connect to host speech.platform.bing.com:443")

    renderer = PromptRenderer(tts(edge_timeout=1.0, edge_retry_after=60), tmp_path,
                              clock=clock, edge_synth=failing_edge)
    started = time.monotonic()
    path = renderer.render("您好", fixed=True)
    assert time.monotonic() - started < 2
    assert renderer.engine_used == "espeak" and tries == ["您好"]
    renderer.render("再见", fixed=True)
    assert tries == ["您好"]  # not retried within retry_after
    clock.now += 61
    renderer.render("谢谢", fixed=True)
    assert tries == ["您好", "谢谢"]
    assert check_wav(path) > 0
    assert not list(tmp_path.glob("edge-*"))
    no_partial_files(tmp_path)


def test_edge_that_hangs_is_abandoned_after_its_timeout(tmp_path):
    release = threading.Event()

    def hanging_edge(text, voice, rate, mp3_path, timeout):
        release.wait(10)  # a network that drops packets

    renderer = PromptRenderer(tts(edge_timeout=0.2), tmp_path, edge_synth=hanging_edge)
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.05)) for _ in range(100)])
    try:
        started = time.monotonic()
        path = renderer.render("您好", fixed=True)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        ticker.kill()
    assert elapsed < 1.5
    assert renderer.engine_used == "espeak" and check_wav(path) > 0
    assert len(ticks) >= 5  # the hub kept running while edge-tts hung


def test_edge_zero_byte_output_is_never_cached(tmp_path):
    def empty_edge(text, voice, rate, mp3_path, timeout):
        Path(mp3_path).write_bytes(b"")

    renderer = PromptRenderer(tts(), tmp_path, edge_synth=empty_edge)
    path = renderer.render("您好", fixed=True)
    assert path.name.startswith("espeak-") and renderer.engine_used == "espeak"
    assert [p.name for p in no_partial_files(tmp_path)] == [path.name]


@pytest.fixture(scope="module")
def mp3_bytes(tmp_path_factory):
    out = tmp_path_factory.mktemp("mp3") / "tone.mp3"
    os.system(f"ffmpeg -nostdin -loglevel error -f lavfi -i sine=frequency=440:duration=1.5 "
              f"-ar 24000 -ac 1 {out}")
    return out.read_bytes()


def test_edge_success_is_decoded_and_preferred_from_cache(tmp_path, mp3_bytes):
    clock = FakeClock()
    seen = []

    def good_edge(text, voice, rate, mp3_path, timeout):
        seen.append((text, voice, rate))
        Path(mp3_path).write_bytes(mp3_bytes)

    renderer = PromptRenderer(tts(edge_retry_after=60), tmp_path, clock=clock, edge_synth=good_edge)
    path = renderer.render("您好", rate=-10, fixed=True)
    assert renderer.engine_used == "edge" and path.name.startswith("edge-")
    rate, channels, width, seconds = wav_params(path)
    assert (rate, channels, width) == (8000, 1, 2) and 1.3 < seconds < 1.7
    assert seen == [("您好", "zh-CN-XiaoxiaoNeural", -10)]
    # edge goes down: the cached neural rendering is still used, new text falls back
    renderer.edge_synth = lambda *a: (_ for _ in ()).throw(TimeoutError("down"))
    assert renderer.render("再见", fixed=True).name.startswith("espeak-")
    assert renderer.render("您好", rate=-10, fixed=True) == path and renderer.engine_used == "cache:edge"


def test_text_built_from_a_callers_data_never_goes_online_unless_the_operator_opts_in(tmp_path, mp3_bytes):
    """issue 17 section 5: a read-back of an ID number went to edge-tts (an online service) by
    default. Per-call text is rendered by espeak-ng; only fixed prompts go online."""
    seen = []

    def good_edge(text, voice, rate, mp3_path, timeout):
        seen.append(text)
        Path(mp3_path).write_bytes(mp3_bytes)

    readback = "您的身份证号是三三零一零六一九九零零一零一一二三X"
    renderer = PromptRenderer(tts(), tmp_path, edge_synth=good_edge)
    path = renderer.render(readback)
    assert seen == [] and renderer.engine_used == "espeak" and path.name.startswith("espeak-")
    assert list(renderer.render_sentences("您的金额是三百元。请确认。")) and seen == []
    assert renderer.render("欢迎致电", fixed=True).name.startswith("edge-") and seen == ["欢迎致电"]
    # a fixed prompt rendered online earlier is not reused for the same text said per call either
    assert renderer.render("欢迎致电").name.startswith("espeak-")
    opted_in = PromptRenderer(tts(edge_for_caller_text=True), tmp_path / "in", edge_synth=good_edge)
    assert opted_in.render(readback).name.startswith("edge-") and seen[-1] == readback


HOSTILE = ["它说\"你好\" '; rm -rf /tmp/x; echo `id` $(touch {marker})",
           "第一行\n第二行\r\n--help -w /etc/passwd",
           "！" * 10 + "请拨打12345；" + ("分号;引号'反引号`美元$" * 300)]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_text_never_reaches_a_shell_or_argv(tmp_path, template):
    marker = tmp_path / "pwned"
    text = template.format(marker=marker)
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path / "cache")
    calls = counting(renderer)
    path = renderer.render(text)
    assert check_wav(path) > 0
    assert not marker.exists()
    for argv, stdin in calls:
        assert all(isinstance(a, str) for a in argv)
        assert not any(ch in arg for arg in argv for ch in "\"'`$;\n")  # text only via stdin
    assert calls[0][0][0] == "espeak-ng" and calls[0][1]  # the text went on stdin


def test_ten_kilobytes_of_text(tmp_path):
    text = ("您好，这里是政务服务便民热线。" * 300)[:3400]
    assert len(text.encode()) > 10_000
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    started = time.monotonic()
    path = renderer.render(text)
    assert check_wav(path) > 60
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("text, error", [
    ("", ValueError), ("  \n ", ValueError), (None, TypeError), (b"bytes", TypeError),
    ("a\x00b", ValueError), ("长" * (MAX_TEXT_CHARS + 1), ValueError),
])
def test_bad_text_is_a_clear_error(tmp_path, text, error):
    with pytest.raises(error, match="prompt text"):
        PromptRenderer(tts(edge_enabled=False), tmp_path).render(text)
    assert list(tmp_path.iterdir()) == []


def test_unspeakable_text_and_bad_rate(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    with pytest.raises(Exception, match="nothing speakable"):
        renderer.render("☎☎☎")
    with pytest.raises(ValueError, match="rate"):
        renderer.render("您好", rate=500)
    assert list(tmp_path.iterdir()) == []


def test_render_many(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    calls = counting(renderer)
    paths = renderer.render_many(["您好", "再见", "您好"])
    assert set(paths) == {"您好", "再见"} and len(set(paths.values())) == 2
    assert len(calls) == 4


def test_split_sentences():
    assert split_sentences("您好。请问有什么可以帮您？\n按1查询；") == ["您好。", "请问有什么可以帮您？", "按1查询；"]
    long = "，".join(["养老保险缴费可以在银行办理"] * 10) + "。"
    pieces = split_sentences(long, max_chars=40)
    assert "".join(pieces) == long and all(len(p) <= 40 for p in pieces)
    assert split_sentences(" 。！ ") == []
    assert split_sentences("안녕하세요. 테스트 봇입니다. 네라고 말씀해 주세요.") == [
        "안녕하세요.", "테스트 봇입니다.", "네라고 말씀해 주세요."]
    assert split_sentences("费率是3.5%。Wait... what? Yes.") == ["费率是3.5%。", "Wait...", "what?", "Yes."]


def test_render_sentences_yields_first_before_rendering_the_rest(tmp_path):
    renderer = PromptRenderer(tts(edge_enabled=False), tmp_path)
    calls = counting(renderer)
    stream = renderer.render_sentences("您好。养老保险可以在银行缴纳。请问还有什么问题？")
    first = next(stream)
    assert len(calls) == 2 and check_wav(first) > 0  # only the first sentence so far
    rest = list(stream)
    assert len(rest) == 2 and len(calls) == 6 and len({first, *rest}) == 3
    with pytest.raises(ValueError, match="empty"):
        list(renderer.render_sentences("  "))
    with pytest.raises(ValueError, match="nothing to say"):
        list(renderer.render_sentences("。！"))
