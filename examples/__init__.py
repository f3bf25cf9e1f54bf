"""The bundled examples (scenarios, specs, recordings, backtest data), shipped as package data of
``ebbtide.examples`` so that ``ebbtide demo`` runs from an installed wheel, not only from a source tree."""
