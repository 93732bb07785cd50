"""The client's Typer commands, one module per resource."""
