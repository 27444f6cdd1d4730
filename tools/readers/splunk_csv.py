"""CSV as Splunk exports it: a header row; a multivalue field's values newline-joined in its cell,
or, in a dispatch directory's results file, given in a `__mv_` companion column."""

import csv
import gzip
from typing import Iterator

from tools.readers.errors import InputError, Record, open_text
from tools.scpv2 import decode_mv


def read(path: str) -> Iterator[Record]:
    with open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if not header:
                return
            mv = {i: header.index(name[5:]) for i, name in enumerate(header)
                  if name.startswith("__mv_") and name[5:] in header}
            plain = [i for i, name in enumerate(header) if not name.startswith("__mv_")]
            for row in reader:
                if len(row) != len(header):
                    raise InputError(path, reader.line_num, "%d cells where the header has %d"
                                     % (len(row), len(header)))
                record: Record = {}
                for i in plain:
                    cell = row[i]
                    if cell:
                        record[header[i]] = cell.split("\n") if "\n" in cell else cell
                for i, target in mv.items():
                    if row[i]:
                        record[header[target]] = decode_mv(row[i])
                yield record
        except csv.Error as error:
            raise InputError(path, reader.line_num, "not valid CSV (%s)" % error)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise InputError(path, reader.line_num, "cannot read (%s)" % error)
