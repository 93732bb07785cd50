"""What each operation means: validation against the registry, state changes, task building."""
