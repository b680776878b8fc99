"""Seed 001: `polyvenv python app.py` - plain imports; the import map sends each to its env."""

import dep_a
import dep_b

print(dep_a.describe())
print(dep_b.describe())
