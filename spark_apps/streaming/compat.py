"""A narrow fix for ``applyInPandasWithState`` on PySpark 4.0.2 with pyarrow >= 20.

PySpark's ``ApplyInPandasWithStateSerializer`` reads its per-group bookkeeping
struct (``startOffset``, ``numRows``, ...) through pandas; with the pinned pyarrow
the integer fields come back as floats and ``RecordBatch.slice`` raises
``TypeError: 'float' object cannot be interpreted as an integer`` on every batch.
Converting that one struct column with ``to_pylist`` keeps Python ints. Importing
this module applies the fix; the stateful function's module imports it, so it
also runs in every Python worker that unpickles that function.
"""

from __future__ import annotations

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
