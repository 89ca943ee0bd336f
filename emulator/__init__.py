"""tplab composition root: topologies, supervisor, scenario runner, reports, CLI."""
