"""ebbtide.core."""
