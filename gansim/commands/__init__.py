"""One module per `gansim` sub-command: register(subparsers) plus a run function."""
