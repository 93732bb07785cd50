from obfleet.cli import app

app(prog_name="obfleet")
