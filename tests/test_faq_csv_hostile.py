"""A FAQ spreadsheet is outside input too: a cell over csv's field limit, or a file far too big, is a
'file:line: problem', never an exception out of the bot file check (issue 17, section 4)."""
from engine.bot import faq


def test_a_cell_over_the_csv_field_limit_is_a_problem(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("id,category,question,answer\n1,a,q?,ok\n2,a,q2?," + "长" * 200_000 + "\n",
                    encoding="utf-8")
    loaded = faq.read_csv(path)
    assert [e.id for e in loaded.entries] == ["1"]
    assert len(loaded.problems) == 1 and loaded.problems[0].startswith(f"{path}:3: not readable as CSV")


def test_a_file_over_the_size_bound_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(faq, "MAX_CSV_BYTES", 1000)
    path = tmp_path / "faq.csv"
    path.write_text("id,category,question,answer\n" + "1,a,q?,ok\n" * 200)
    loaded = faq.read_csv(path)
    assert loaded.entries == [] and loaded.problems == [f"{path}:1: file over 1000 bytes"]
