"""The command line as a whole: help text reaches the user as written."""

from typer.testing import CliRunner

from azc.cli import app


def test_help_keeps_square_brackets():
    # rich markup used to eat "[default: ...]" and the "[ray]" of `pip install "azc[ray]"`
    result = CliRunner().invoke(app, ["evolve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "[default: drawn, and recorded]" in result.output
    assert 'azc[ray]' in result.output
