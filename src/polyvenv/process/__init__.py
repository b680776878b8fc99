"""Process isolation: an env in a worker process behind the runtime's API (coming)."""
