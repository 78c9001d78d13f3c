"""The explorer: its traits and public methods, the research features, the answers to the front
end's messages, and the one place that turns the explorer's current view into plain data."""
