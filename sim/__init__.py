"""ebbtide.sim."""
