"""Two narrow fixes for the Python workers of the stream's pandas operator (PySpark 4.0.2).

1. ``applyInPandasWithState`` with pyarrow >= 20:

PySpark's ``ApplyInPandasWithStateSerializer`` reads its per-group bookkeeping
struct (``startOffset``, ``numRows``, ...) through pandas; with the pinned pyarrow
the integer fields come back as floats and ``RecordBatch.slice`` raises
``TypeError: 'float' object cannot be interpreted as an integer`` on every batch.
Converting that one struct column with ``to_pylist`` keeps Python ints. Importing
this module applies the fix; the stateful function's module imports it, so it
also runs in every Python worker that unpickles that function.

2. Per-task import-cache invalidation: every Python task starts with
``importlib.invalidate_caches()`` (``pyspark.worker_util.setup_spark_files``). On
CPython 3.11 each ``zipimporter`` then re-reads its archive's whole directory, and the
workers import PySpark from ``pyspark.zip`` (1,220 entries) through one importer per
package: ~70 ms per task on an idle machine, 41% of the workers' time in a 1,000 msg/s
stream profile (py-spy). Patched, an importer re-reads its archive only when the file
changed (size or modification time), so the result is the same.
"""

from __future__ import annotations

import os
import zipimport

import pandas as pd
from pyspark.sql.pandas.serializers import ApplyInPandasWithStateSerializer

_BOOKKEEPING_FIELDS = {"startOffset", "numRows", "isLastChunk"}


def _arrow_to_pandas(self, arrow_column, *args, **kwargs):
    import pyarrow as pa

    column_type = arrow_column.type
    if (
        pa.types.is_struct(column_type)
        and {column_type.field(i).name for i in range(column_type.num_fields)} >= _BOOKKEEPING_FIELDS
    ):
        return pd.Series(arrow_column.to_pylist(), dtype=object)
    return _original(self, arrow_column, *args, **kwargs)


if not getattr(ApplyInPandasWithStateSerializer, "_payments_patched", False):
    _original = ApplyInPandasWithStateSerializer.arrow_to_pandas
    ApplyInPandasWithStateSerializer.arrow_to_pandas = _arrow_to_pandas
    ApplyInPandasWithStateSerializer._payments_patched = True


def _archive_signature(path: str):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _invalidate_if_changed(self) -> None:
    signature = _archive_signature(self.archive)
    if signature is None or getattr(self, "_payments_signature", None) != signature:
        _original_invalidate(self)
        self._payments_signature = signature


if not getattr(zipimport.zipimporter, "_payments_patched", False):
    _original_invalidate = zipimport.zipimporter.invalidate_caches
    zipimport.zipimporter.invalidate_caches = _invalidate_if_changed
    zipimport.zipimporter._payments_patched = True
