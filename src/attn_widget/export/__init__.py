"""What leaves the notebook: figures (PNG, SVG), the static snapshot, the standalone page and the
CircuitsVis view, all from plain data. Never imports the widget."""
