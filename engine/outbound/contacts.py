"""Contact lists for follow-up campaigns: CSV or XLSX files, checked row by row.

    rows, errors = read_contacts("list.xlsx")        # errors: ["list.xlsx:7: number: ..."]

Columns (header row, case-insensitive, Chinese headers accepted): `number` (电话/号码, required),
`name` (姓名), `reference` (ticket number or call uuid: 工单/参考), and any other column is a free
field the script may use ({field} in prompts). A bad row is reported as `file:line: problem`;
the caller decides: load nothing (default) or the good rows only (`partial`), and says which.
"""
import csv
import io
import re
from pathlib import Path

HEADER_ALIASES = {
    "number": ("number", "phone", "mobile", "电话", "号码", "手机", "电话号码", "手机号码"),
    "name": ("name", "姓名", "名字"),
    "reference": ("reference", "ref", "ticket", "call", "工单", "工单号", "参考"),
}
MAX_ROWS = 200_000
MAX_FIELD = 500              # characters in one cell


class ContactFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, no number column)."""


def normalise_number(value):
    """(national number, None) or (None, why not): the dialler's rules (engine/outbound/numbers.py)
    decide what a number is; what may be dialled (DNC, dial block) is decided when dialling."""
    if isinstance(value, float) and value.is_integer():      # XLSX stores 13800138000 as a number
        value = int(value)
    try:
        from engine.outbound.numbers import InvalidNumber, normalise
    except ImportError:           # the dialler's module not merged yet: plain digits only
        text = re.sub(r"[\s\-()]", "", str(value if value is not None else ""))
        ok = re.fullmatch(r"\d{5,20}", text)
        return (text, None) if ok else (None, f"{str(value)[:40]!r} is not a phone number")
    try:
        return normalise(value).national, None
    except InvalidNumber as exc:
        return None, str(exc)


def read_contacts(path):
    """([row dict], [error text]) for a .csv or .xlsx file; rows carry their `source` file:line."""
    path = Path(path)
    if not path.is_file():
        raise ContactFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        table = _xlsx_rows(path)
    else:
        raise ContactFileError(f"{path}: unknown format {suffix or '(none)'}: use .csv or .xlsx")
    return parse_table(str(path), table)


def parse_table(name, table):
    """Rows from [(line, [cells])], the first being the header."""
    table = iter(table)
    try:
        line, header = next(table)
    except StopIteration:
        raise ContactFileError(f"{name}: empty file") from None
    columns = _columns(name, line, header)
    rows, errors, seen = [], [], {}
    for line, cells in table:
        if all(c in (None, "") for c in cells):
            continue
        if len(rows) + len(errors) >= MAX_ROWS:
            errors.append(f"{name}:{line}: more than {MAX_ROWS} rows; the rest not read")
            break
        row, problem = _row(columns, cells)
        if problem is None and row["number"] in seen:
            problem = f"number {row['number']} already on line {seen[row['number']]}"
        if problem:
            errors.append(f"{name}:{line}: {problem}")
            continue
        seen[row["number"]] = line
        row["source"] = f"{name}:{line}"
        rows.append(row)
    return rows, errors


def _columns(name, line, header):
    columns = []
    for cell in header:
        label = str(cell or "").strip()
        key = next((k for k, names in HEADER_ALIASES.items() if label.lower() in names), label)
        columns.append(key)
    if "number" not in columns:
        raise ContactFileError(f"{name}:{line}: no number column (number/电话/号码) in the header {header!r}")
    dupes = {c for c in columns if c and columns.count(c) > 1}
    if dupes:
        raise ContactFileError(f"{name}:{line}: column(s) {', '.join(sorted(dupes))} given twice")
    return columns


def _row(columns, cells):
    row = {"name": "", "reference": "", "fields": {}}
    for key, cell in zip(columns, cells):
        if not key:
            continue
        text = "" if cell is None else str(int(cell) if isinstance(cell, float) and cell.is_integer() else cell)
        if len(text) > MAX_FIELD:
            return None, f"{key}: longer than {MAX_FIELD} characters"
        if key == "number":
            number, problem = normalise_number(cell)
            if number is None:
                return None, f"number: {problem}"
            row["number"] = number
        elif key in ("name", "reference"):
            row[key] = text.strip()
        else:
            row["fields"][key] = text.strip()
    if "number" not in row:
        return None, "number: empty"
    return row, None


def _csv_rows(path):
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):     # Excel in China often saves GBK CSV
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ContactFileError(f"{path}: neither UTF-8 nor GB18030 text")
    reader = csv.reader(io.StringIO(text, newline=""))
    return [(reader.line_num, cells) for cells in reader]


def _xlsx_rows(path):
    import openpyxl
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:      # noqa: BLE001 - zip/XML errors of a broken file
        raise ContactFileError(f"{path}: not a readable XLSX file: {exc}") from None
    try:
        sheet = book.worksheets[0]
        return [(i, list(cells)) for i, cells in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        book.close()
