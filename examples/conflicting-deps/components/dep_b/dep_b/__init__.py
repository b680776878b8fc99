"""dep_b: pinned to pandas 2.0.3 (and so to numpy 1.x)."""

import numpy as np
import pandas as pd


def describe() -> str:
    df = pd.DataFrame({"team": ["a", "b", "a"], "score": np.array([1.5, 2.0, 3.5])})
    return f"dep_b uses pandas {pd.__version__} on numpy {np.__version__}: {df.groupby('team')['score'].sum().to_dict()}"
