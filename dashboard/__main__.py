"""``python -m dashboard [--port 8050] [--host 127.0.0.1] [--debug]``: serve the demo desk book."""
from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and auto-reload")
    args = parser.parse_args(argv)
    from .app import app  # imported here so that --help does not build the app

    app.run(host=args.host, port=args.port, debug=args.debug)


if __name__ == "__main__":
    main()
