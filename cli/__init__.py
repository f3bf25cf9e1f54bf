"""ebbtide.cli."""
