"""ebbtide.adapters."""
