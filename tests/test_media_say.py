import datetime
from decimal import Decimal

import pytest

from engine.media import say


@pytest.mark.parametrize("n, text", [
    (0, "零"), (10, "十"), (15, "十五"), (101, "一百零一"), (12345, "一万二千三百四十五"),
    (100000001, "一亿零一"), ("-3.5", "负三点五"),
])
def test_number(n, text):
    assert say.number(n) == text


def test_digits_read_one_by_one_with_optional_yao():
    assert say.digits("13800138000") == "一三八零零一三八零零零"
    assert say.digits(12345) == "一二三四五"
    assert say.digits("110", yao=True) == "幺幺零"


@pytest.mark.parametrize("amount, text", [
    (Decimal("1234.50"), "一千二百三十四元五角"), ("0.05", "五分"), ("1.05", "一元零五分"),
    ("12.34", "十二元三角四分"), (100, "一百元整"), ("0", "零元整"), ("-2.5", "负二元五角"),
])
def test_money(amount, text):
    assert say.money(amount) == text


@pytest.mark.parametrize("d", ["2026年10月1日", "2026-10-01", datetime.date(2026, 10, 1),
                               datetime.datetime(2026, 10, 1, 9, 30)])
def test_date(d):
    assert say.date(d) == "二零二六年十月一日"


def test_date_two_digit_day():
    assert say.date("2026-12-25") == "二零二六年十二月二十五日"


def test_id_number_with_x():
    assert say.id_number("11010519491231002x") == "一一零一零五一九四九一二三一零零二叉"
    assert say.id_number("110105194912310021").endswith("零零二一")


@pytest.mark.parametrize("func, bad", [
    (say.number, "12a"), (say.number, "nan"), (say.digits, "12 3"), (say.digits, ""),
    (say.digits, "١٢"), (say.money, "abc"), (say.date, "2026-13-01"), (say.date, "tomorrow"),
    (say.id_number, "X123"), (say.id_number, "12;rm"),
])
def test_bad_input_is_a_clear_value_error(func, bad):
    with pytest.raises(ValueError, match="not a"):
        func(bad)


def test_digit_runs_for_tts():
    assert say.digit_runs_as_words("拨打12345或按3号键") == "拨打一二三四五或按三号键"
    assert say.digit_runs_as_words("手机13800138000") == "手机一三八零零一三八零零零"
    assert say.digit_runs_as_words("分机012") == "分机零一二"
