"""Reading a user's labelled text file for prepare-own-data.sh: TSV/CSV rows, header detection,
bad-row accounting and the fixed class order. No tokenisation, no fairseq (see own_data.py).

File format: one example a line, ``label<TAB>text`` or ``label<TAB>text<TAB>text2`` (.tsv/.txt:
split on tabs, no quoting) or the same columns comma-separated with CSV quoting (.csv: quoted
fields may hold commas, doubled quotes and line breaks). UTF-8 (a byte-order mark is ignored).
Blank lines are skipped and not counted.
"""
import csv
import math
import sys
from collections import Counter
from dataclasses import dataclass, field

FORMATS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv"}
# a first row whose label column is one of these (any case) is a header, unless that string is
# also the label of another row of the file (then it is data: a class called "y" stays a class)
HEADER_NAMES = ("label", "labels", "class", "target", "y", "score", "category")
# fairseq's Dictionary reserves these; a class called so would be binarised as a special symbol
RESERVED_LABELS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
SHOW_BAD = 5  # bad rows listed by line number (the rest are counted)


class DataError(Exception):
    """The data cannot be used (exit code 2): message names the file and what is wrong."""


@dataclass
class Example:
    line: int           # 1-based line of the row's start in its file
    label: str
    text: str
    text2: str = None


@dataclass
class FileRows:
    path: str
    examples: list = field(default_factory=list)
    bad: list = field(default_factory=list)       # (line, reason)
    header_line: int = None
    first_line: int = None                          # line of the first non-blank row

    @property
    def total(self):
        """Data rows read (good + bad; no header, no blank lines)."""
        return len(self.examples) + len(self.bad)

    def bad_summary(self):
        shown = "; ".join(f"line {n}: {why}" for n, why in self.bad[:SHOW_BAD])
        more = f"; ... and {len(self.bad) - SHOW_BAD} more" if len(self.bad) > SHOW_BAD else ""
        return f"{len(self.bad)} bad row(s) of {self.total} skipped ({shown}{more})"


def file_format(path):
    """'tsv' or 'csv' from the file name's extension, or None when it is not one we read."""
    name = str(path).lower()
    for ext, fmt in FORMATS.items():
        if name.endswith(ext):
            return fmt
    return None


def raw_rows(path, fmt):
    """Yield (line, fields) for every non-blank row; fields are not stripped."""
    try:
        with open(path, encoding="utf-8-sig", newline="" if fmt == "csv" else None) as f:
            if fmt == "tsv":
                for n, line in enumerate(f, 1):
                    line = line.rstrip("\r\n")
                    if line.strip():
                        yield n, line.split("\t")
            else:
                csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))  # long documents
                reader = csv.reader(f)
                start = 1
                try:
                    for row in reader:
                        if any(x.strip() for x in row):
                            yield start, row
                        start = reader.line_num + 1
                except csv.Error as e:
                    raise DataError(f"{path}: CSV error at line {reader.line_num}: {e}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def is_float(s):
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def is_header(first_label, other_labels, regression):
    """The header rule (see docs/encoder-foundation.md, "Your own data")."""
    name = first_label.strip().lower()
    if regression:
        return not is_float(first_label)
    return name in HEADER_NAMES and first_label.strip() not in other_labels


def read_file(path, fmt, columns=None, regression=False):
    """Read one file. ``columns``: 2 or 3 (``None``: the most common of the two in this file).
    Returns (FileRows, columns)."""
    rows = list(raw_rows(path, fmt))
    out = FileRows(path=str(path))
    if not rows:
        return out, columns
    out.first_line = rows[0][0]
    others = {r[0].strip() for _, r in rows[1:] if r}
    if is_header(rows[0][1][0], others, regression):
        out.header_line = rows[0][0]
        rows = rows[1:]
    if columns is None:
        counts = Counter(len(r) for _, r in rows if len(r) in (2, 3))
        columns = counts.most_common(1)[0][0] if counts else 2
    for n, fields in rows:
        reason = check_row(fields, columns, regression)
        if reason:
            out.bad.append((n, reason))
            continue
        label = fields[0].strip()
        if not regression:
            label = "_".join(label.split())  # fairseq splits label lines on whitespace
        out.examples.append(Example(n, label, " ".join(fields[1].split()),
                                    " ".join(fields[2].split()) if columns == 3 else None))
    return out, columns


def check_row(fields, columns, regression):
    """Why a row is bad, or None."""
    if len(fields) != columns:
        want = "label, text" + (", text2" if columns == 3 else "")
        return f"{len(fields)} column(s), expected {columns} ({want})"
    if not fields[0].strip():
        return "missing label"
    if regression and not is_float(fields[0]):
        return f"label {fields[0].strip()[:30]!r} is not a finite number"
    if not fields[1].strip():
        return "empty text"
    if columns == 3 and not fields[2].strip():
        return "empty second text"
    return None


def check_mostly_bad(rows, option):
    """Refuse a file with no usable row or where more than half of the rows are bad."""
    if rows.total == 0:
        raise DataError(f"{option} {rows.path}: no examples (empty file, or only a header)")
    if not rows.examples or len(rows.bad) > 0.5 * rows.total:
        hint = (" (class labels? drop --regression)"
                if all("not a finite number" in why for _, why in rows.bad) else "")
        raise DataError(f"{option} {rows.path}: {len(rows.bad)} of {rows.total} rows are bad, "
                        "refusing the file; first: " + "; ".join(
                            f"line {n}: {why}" for n, why in rows.bad[:SHOW_BAD]) + hint)


def class_order(labels):
    """The fixed class order: numeric when every label is an integer (-1 < 0 < 2 < 10), otherwise
    sorted label strings (Unicode code point order). Class index i = position i."""
    labels = set(labels)
    bad = sorted(set(labels) & set(RESERVED_LABELS))
    if bad:
        raise DataError(f"label(s) {bad} are fairseq's reserved symbols; rename these classes")

    def as_int(s):
        try:
            return int(s)
        except ValueError:
            return None
    if all(as_int(x) is not None for x in labels):
        return sorted(labels, key=lambda x: (as_int(x), x))
    return sorted(labels)
