"""The build half: turns a declaration into real environments on disk (uses uv and friends)."""
