"""dep_a: needs pandas >= 2.2 (uses `Series.case_when`)."""

import pandas as pd


def describe() -> str:
    s = pd.Series([1, 5, 9])
    grades = s.case_when([(s > 7, "high"), (s > 3, "mid")]).where(s > 3, "low")
    return f"dep_a uses pandas {pd.__version__}: {grades.tolist()}"
